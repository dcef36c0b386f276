"""The programme's configuration: phases with their date windows and targets, and the
milestones announced when an indicator crosses a threshold.

Phases, targets and milestone thresholds are configuration, not code: they are read from a
TOML file (`SCORE_PROGRAMME`; by default `deploy/config/programme.toml`, which is the file
shipped beside this module). A file that cannot be used stops the service at its start, with
the line and the key at fault (`ProgrammeError`).
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from score_indicators.indicators import INDICATORS

DEFAULT_FILE = Path(__file__).with_name("programme.toml")

TargetKey = Literal[
    "enterprises_trained_direct",
    "enterprises_trained_partner",
    "trainers_trained",
    "new_regions",
    "new_chambers",
    "case_studies_published",
    "cost_recovery_pct",
]
TARGETS: tuple[str, ...] = get_args(TargetKey)
"""The keys a phase's targets can have (DOMAIN.md, "Targets, exactly"), in its order."""

_SLUG = r"^[a-z0-9][a-z0-9_-]*$"


class Phase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_SLUG)
    title: str
    country: str = "bo"
    starts_on: dt.date
    ends_on: dt.date
    targets: dict[TargetKey, Annotated[Decimal, Field(gt=0)]] = Field(default_factory=dict)

    @field_validator("ends_on")
    @classmethod
    def _window_in_order(cls, ends_on: dt.date, info: ValidationInfo) -> dt.date:
        starts_on = info.data.get("starts_on")
        if starts_on is not None and ends_on < starts_on:
            raise ValueError(f"the phase ends before it starts ({starts_on})")
        return ends_on

    @property
    def window(self) -> tuple[dt.date, dt.date]:
        return (self.starts_on, self.ends_on)


class Milestone(BaseModel):
    """An indicator crossing thresholds in a scope: each (milestone, scope, threshold) is
    announced once, ever.

    `scope` is `national` or `regions` (each region of the country on its own). The thresholds
    are `at` (a list), or every multiple of `every`; `targets` (a phase id, or `all`) makes one
    threshold per target of the phase instead, on the target's own indicator, within its window.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=_SLUG)
    title: str = Field(min_length=1, description="What it is, for people: in Spanish")
    title_en: str | None = Field(default=None, description="The same, in English")
    indicator: str | None = None
    scope: Literal["national", "regions"] = "national"
    at: tuple[Decimal, ...] = ()
    every: Decimal | None = Field(default=None, gt=0)
    targets: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Milestone:
        kinds = [bool(self.at), self.every is not None, self.targets is not None]
        if sum(kinds) != 1:
            raise ValueError(f"milestone {self.id}: give exactly one of at, every or targets")
        if self.targets is None and self.indicator not in INDICATORS:
            raise ValueError(f"milestone {self.id}: unknown indicator {self.indicator!r}")
        if self.targets is not None and self.indicator is not None:
            raise ValueError(f"milestone {self.id}: a targets milestone names no indicator")
        if any(threshold <= 0 for threshold in self.at):
            raise ValueError(f"milestone {self.id}: thresholds must be above zero")
        return self

    def crossed(self, value: Decimal | None) -> Iterator[Decimal]:
        """The thresholds of `at` or `every` that `value` has reached."""
        if value is None:
            return
        if self.every is not None:
            for step in range(1, int(value // self.every) + 1):
                yield self.every * step
        else:
            yield from (threshold for threshold in self.at if value >= threshold)


class Programme(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    phases: list[Phase] = Field(default_factory=list)
    milestones: list[Milestone] = Field(default_factory=list)

    @model_validator(mode="after")
    def _ids_unique_and_phases_known(self) -> Programme:
        for kind, ids in (
            ("phase", [p.id for p in self.phases]),
            ("milestone", [m.id for m in self.milestones]),
        ):
            if twice := sorted({i for i in ids if ids.count(i) > 1}):
                raise ValueError(f"{kind} ids used twice: {', '.join(twice)}")
        known = {p.id for p in self.phases} | {"all"}
        for milestone in self.milestones:
            if milestone.targets is not None and milestone.targets not in known:
                raise ValueError(f"milestone {milestone.id}: unknown phase {milestone.targets!r}")
        return self

    def phase(self, phase_id: str) -> Phase | None:
        return next((p for p in self.phases if p.id == phase_id), None)

    def current_phase(self, today: dt.date) -> Phase | None:
        """The phase whose window holds `today`, else the last one to have started."""
        started = [p for p in self.phases if p.starts_on <= today]
        holding = [p for p in started if today <= p.ends_on]
        chosen = holding or started
        return chosen[-1] if chosen else None

    def phases_of(self, milestone: Milestone) -> list[Phase]:
        """The phases whose targets a `targets` milestone announces."""
        if milestone.targets is None:
            return []
        return [p for p in self.phases if milestone.targets in ("all", p.id) and p.targets]


class ProgrammeError(ValueError):
    """The programme file cannot be used; the message names the file, the line and the key."""


def load_programme(path: Path = DEFAULT_FILE) -> Programme:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ProgrammeError(f"{path}: cannot be read: {error.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProgrammeError(f"{path}: not valid TOML: {error}") from None
    try:
        return Programme.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = tuple(part for part in first["loc"] if part != "[key]")
        key = ".".join(str(part) for part in where) or "(the file)"
        line = _line_of(text, where)
        at = f"{path}:{line}" if line else str(path)
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ProgrammeError(f"{at}: {key}: {message}") from None


def _line_of(text: str, where: Sequence[int | str]) -> int | None:
    """The line of `text` that the validation error at `where` is about: the key itself, or the
    table it is in (`phases.1.targets.x` → the `x = …` under the second `[[phases]]`)."""
    lines = text.splitlines()
    table: list[str] = []
    counts: dict[str, int] = {}
    best: int | None = None
    path = [str(part) for part in where]
    for number, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if header := re.fullmatch(r"\[\[\s*([\w.-]+)\s*\]\]", line):
            name = header.group(1)
            counts[name] = counts.get(name, -1) + 1
            table = [*name.split("."), str(counts[name])]
        elif header := re.fullmatch(r"\[\s*([\w.-]+)\s*\]", line):
            parts = header.group(1).split(".")
            # `[phases.targets]` is a table of the last `[[phases]]`.
            table = [*parts[:1], str(counts.get(parts[0], 0)), *parts[1:]]
        elif key := re.match(r"([\w-]+)\s*=", line):
            here = [*table, key.group(1)]
            if here == path[: len(here)]:
                best = number
            continue
        else:
            continue
        if table == path[: len(table)]:
            best = number
    return best
