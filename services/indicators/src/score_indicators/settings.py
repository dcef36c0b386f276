from __future__ import annotations

from pathlib import Path

from score_chassis.settings import ServiceSettings
from score_indicators.programme import DEFAULT_FILE


class IndicatorsSettings(ServiceSettings):
    service_name: str = "indicators"
    http_port: int = 8103
    programme_file: Path = DEFAULT_FILE
