"""The trainer aggregate: registered at the train-the-trainer workshop, then certified per
module at the `trainer` or `expert` level. A certification reaches `decide` only for a
registered trainer: the chassis answers 404 for one never registered."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from score_chassis.decider import Decider, Invalid, Refused
from score_contracts.events import Event, TrainerCertified, TrainerRegistered
from score_contracts.events.base import Sex

Level = Literal["trainer", "expert"]
RANK: Final[dict[Level, int]] = {"trainer": 1, "expert": 2}
"""An expert certification covers what a trainer certification does."""


# Commands.


@dataclass(frozen=True, slots=True)
class RegisterTrainer:
    trainer_id: str
    name: str
    sex: Sex
    country: str
    region: str
    organisation: str
    registered_on: dt.date


@dataclass(frozen=True, slots=True)
class CertifyTrainer:
    trainer_id: str
    modules: tuple[int, ...]
    level: Level
    certified_on: dt.date


Command = RegisterTrainer | CertifyTrainer


# State.


@dataclass(frozen=True, slots=True)
class Certification:
    level: Level
    certified_on: dt.date


@dataclass(frozen=True, slots=True)
class Trainer:
    registered: bool = False
    trainer_id: str = ""
    name: str = ""
    sex: Sex = "female"
    country: str = ""
    region: str = ""
    organisation: str = ""
    registered_on: dt.date | None = None
    certifications: dict[int, Certification] = field(default_factory=dict)
    """The highest level the trainer holds in each module."""

    def holds(self, module: int, level: Level) -> bool:
        held = self.certifications.get(module)
        return held is not None and RANK[held.level] >= RANK[level]


def decide(command: Command, state: Trainer) -> list[Event]:
    match command:
        case RegisterTrainer():
            return [
                TrainerRegistered(
                    trainer_id=command.trainer_id,
                    name=command.name,
                    sex=command.sex,
                    country=command.country,
                    region=command.region,
                    organisation=command.organisation,
                    registered_on=command.registered_on,
                )
            ]
        case CertifyTrainer(certified_on=d) if state.registered_on and d < state.registered_on:
            raise Invalid(
                "certified_on",
                "is before the trainer was registered",
                rule="date-before-registration",
            )
        case CertifyTrainer(modules=ms, level=level) if all(state.holds(m, level) for m in ms):
            raise Refused(
                f"the trainer already holds this certification for modules {list(ms)}",
                rule="already-certified",
            )
        case CertifyTrainer():
            return [
                TrainerCertified(
                    trainer_id=state.trainer_id,
                    modules=sorted(command.modules),
                    level=command.level,
                    certified_on=command.certified_on,
                )
            ]
    raise TypeError(f"not a command of the trainer: {command!r}")


def evolve(state: Trainer, event: Event) -> Trainer:
    match event:
        case TrainerRegistered():
            return replace(
                state,
                registered=True,
                trainer_id=event.trainer_id,
                name=event.name or "",  # absent only from a public copy
                sex=event.sex,
                country=event.country,
                region=event.region,
                organisation=event.organisation,
                registered_on=event.registered_on,
            )
        case TrainerCertified():
            certified = Certification(event.level, event.certified_on)
            raised = {m: certified for m in event.modules if not state.holds(m, event.level)}
            return replace(state, certifications={**state.certifications, **raised})
        case _:
            return state


trainer = Decider[Command, Trainer, Event](decide=decide, evolve=evolve, initial_state=Trainer())
