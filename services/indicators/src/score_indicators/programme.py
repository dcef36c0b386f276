"""The programme's configuration: phases with their date windows and targets.

Phases, targets and milestone thresholds are configuration, not code: they are read from a
TOML file (`SCORE_PROGRAMME_FILE`, by default the one shipped beside this module).
"""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_FILE = Path(__file__).with_name("programme.toml")


class Phase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    title: str
    country: str = "bo"
    starts_on: dt.date
    ends_on: dt.date
    targets: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _window_in_order(self) -> Phase:
        if self.ends_on < self.starts_on:
            raise ValueError(f"phase {self.id} ends before it starts")
        return self

    @property
    def window(self) -> tuple[dt.date, dt.date]:
        return (self.starts_on, self.ends_on)


class Programme(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    phases: list[Phase] = Field(default_factory=list)

    def phase(self, phase_id: str) -> Phase | None:
        return next((p for p in self.phases if p.id == phase_id), None)


def load_programme(path: Path = DEFAULT_FILE) -> Programme:
    with path.open("rb") as file:
        return Programme.model_validate(tomllib.load(file))
