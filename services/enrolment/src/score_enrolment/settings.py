from __future__ import annotations

from pydantic import Field, model_validator

from score_chassis.settings import ServiceSettings


class EnrolmentSettings(ServiceSettings):
    service_name: str = "enrolment"
    http_port: int = 8101
    size_minimum: int = Field(default=30, ge=0, description="Smallest targeted workforce")
    size_maximum: int = Field(default=250, ge=1, description="Largest targeted workforce")

    @model_validator(mode="after")
    def _a_range(self) -> EnrolmentSettings:
        if self.size_minimum > self.size_maximum:
            raise ValueError("size_minimum is above size_maximum")
        return self
