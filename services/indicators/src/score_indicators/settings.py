from __future__ import annotations

from pathlib import Path

from pydantic import Field

from score_chassis.settings import ServiceSettings
from score_indicators.programme import DEFAULT_FILE


class IndicatorsSettings(ServiceSettings):
    service_name: str = "indicators"
    http_port: int = 8103
    programme: Path = Field(
        default=DEFAULT_FILE,
        description="The programme's phases, targets and milestones (TOML); the default is "
        "deploy/config/programme.toml",
    )
