from __future__ import annotations

from score_chassis.settings import ServiceSettings


class VisitsSettings(ServiceSettings):
    service_name: str = "visits"
    http_port: int = 8102
