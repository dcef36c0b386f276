"""The enterprise aggregate: its commands, its state, and the rules that decide between them.

`decide` reads like the rules a programme officer would state; `evolve` folds the events
into the state those rules are judged against. Both are pure.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace

from score_chassis.decider import Decider, Invalid, Refused
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    Event,
    Headcount,
    Money,
    ParticipantsTrained,
)
from score_contracts.events.base import Delivery


@dataclass(frozen=True, slots=True)
class SizeRange:
    """The workforce SCORE targets; outside it an enterprise needs a stated reason."""

    minimum: int = 30
    maximum: int = 250

    def __contains__(self, workforce: object) -> bool:
        return isinstance(workforce, Headcount) and (
            self.minimum <= workforce.total <= self.maximum
        )


# Commands: imperative, plain data.


@dataclass(frozen=True, slots=True)
class RegisterEnterprise:
    enterprise_id: str
    name: str
    tax_id: str
    country: str
    region: str
    sector: str
    chamber: str
    workforce: Headcount
    registered_on: dt.date
    size_exception_reason: str | None = None
    size_range: SizeRange = SizeRange()


@dataclass(frozen=True, slots=True)
class Enrol:
    enterprise_id: str
    enrolment_id: str
    module: int
    delivery: Delivery
    delivery_cost: Money
    enrolled_on: dt.date
    partner: str | None = None
    exception_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RecordTraining:
    enterprise_id: str
    enrolment_id: str
    trained_on: dt.date
    managers: Headcount
    workers: Headcount
    trainer_id: str | None = None


Command = RegisterEnterprise | Enrol | RecordTraining


# State.


@dataclass(frozen=True, slots=True)
class Enrolment:
    enrolment_id: str
    module: int
    delivery: Delivery
    enrolled_on: dt.date
    trainings: int = 0


@dataclass(frozen=True, slots=True)
class Enterprise:
    registered: bool = False
    enterprise_id: str = ""
    name: str = ""
    tax_id: str = ""
    country: str = ""
    region: str = ""
    sector: str = ""
    chamber: str = ""
    registered_on: dt.date | None = None
    workforce: Headcount | None = None
    withdrawn: bool = False
    enrolments: dict[str, Enrolment] = field(default_factory=dict)

    @property
    def modules(self) -> set[int]:
        return {e.module for e in self.enrolments.values()}


def decide(command: Command, state: Enterprise) -> list[Event]:
    match command:
        case RegisterEnterprise() if state.registered:
            raise Refused("the enterprise is already registered", rule="already-registered")
        case RegisterEnterprise(workforce=w, size_exception_reason=None, size_range=r) if (
            w not in r
        ):
            raise Refused(
                f"a workforce of {w.total} is outside {r.minimum}–{r.maximum}: "
                "state a size_exception_reason",
                rule="size-range-needs-reason",
            )
        case RegisterEnterprise():
            return [_registered(command)]
        case Enrol() if state.withdrawn:
            raise Refused("the enterprise has withdrawn", rule="no-enrolment-after-withdrawal")
        case Enrol(module=m, exception_reason=None) if m != 1 and 1 not in state.modules:
            raise Refused(
                "module 1 comes first unless an exception_reason is given", rule="module-1-first"
            )
        case Enrol(enrolled_on=d) if state.registered_on and d < state.registered_on:
            raise Invalid("enrolled_on", "is before the enterprise was registered")
        case Enrol():
            return [
                EnterpriseEnrolled(
                    enterprise_id=state.enterprise_id,
                    enrolment_id=command.enrolment_id,
                    module=command.module,
                    delivery=command.delivery,
                    partner=command.partner,
                    delivery_cost=command.delivery_cost,
                    enrolled_on=command.enrolled_on,
                    exception_reason=command.exception_reason,
                )
            ]
        case RecordTraining(enrolment_id=e) if e not in state.enrolments:
            raise Refused(f"the enterprise has no enrolment {e}", rule="training-needs-enrolment")
        case RecordTraining(trained_on=d, enrolment_id=e) if d < state.enrolments[e].enrolled_on:
            raise Invalid("trained_on", "is before the enrolment")
        case RecordTraining(managers=m, workers=w) if m.total + w.total == 0:
            raise Invalid("participants", "a training has at least one manager or worker")
        case RecordTraining():
            return [
                ParticipantsTrained(
                    enterprise_id=state.enterprise_id,
                    enrolment_id=command.enrolment_id,
                    module=state.enrolments[command.enrolment_id].module,
                    trained_on=command.trained_on,
                    trainer_id=command.trainer_id,
                    managers=command.managers,
                    workers=command.workers,
                )
            ]
    raise TypeError(f"not a command of the enterprise: {command!r}")


def _registered(command: RegisterEnterprise) -> EnterpriseRegistered:
    return EnterpriseRegistered(
        enterprise_id=command.enterprise_id,
        name=command.name,
        tax_id=command.tax_id,
        country=command.country,
        region=command.region,
        sector=command.sector,
        chamber=command.chamber,
        workforce=command.workforce,
        registered_on=command.registered_on,
        size_exception_reason=command.size_exception_reason,
    )


def evolve(state: Enterprise, event: Event) -> Enterprise:
    match event:
        case EnterpriseRegistered():
            return replace(
                state,
                registered=True,
                enterprise_id=event.enterprise_id,
                name=event.name,
                tax_id=event.tax_id,
                country=event.country,
                region=event.region,
                sector=event.sector,
                chamber=event.chamber,
                registered_on=event.registered_on,
                workforce=event.workforce,
            )
        case EnterpriseEnrolled():
            enrolment = Enrolment(
                enrolment_id=event.enrolment_id,
                module=event.module,
                delivery=event.delivery,
                enrolled_on=event.enrolled_on,
            )
            return replace(state, enrolments={**state.enrolments, event.enrolment_id: enrolment})
        case ParticipantsTrained():
            trained = state.enrolments[event.enrolment_id]
            trained = replace(trained, trainings=trained.trainings + 1)
            return replace(state, enrolments={**state.enrolments, event.enrolment_id: trained})
        case EnterpriseWithdrawn():
            return replace(state, withdrawn=True)
        case _:
            return state


enterprise = Decider[Command, Enterprise, Event](
    decide=decide, evolve=evolve, initial_state=Enterprise()
)
