"""The visit aggregate: in-factory consultancy visits by a trainer after a module's workshop.

Whether an enterprise is enrolled in a module, has withdrawn, or a trainer is certified are
facts of the enrolment service, which this service knows only from its events. The handler
reads them from the local views and hands them to `decide` inside the command, so that
`decide` stays pure and its tests state the facts outright.

A refusal is final only when it rests on a fact the views hold (a withdrawal, which is never
undone). When it rests on a fact the views lack — an enterprise, enrolment, trainer or
certification not heard of — it is `NotKnownYet`: the fact may have been recorded a moment
ago and not reached us, so the client may retry. While the views are being rebuilt they may
lack any fact, a withdrawal too, so nothing is accepted on them then: what they already hold
still refuses for good, and everything else is not known yet.

A schedule reaches `decide` only for a new visit (its id is the server's), a completion or
cancellation only for a scheduled one (the chassis answers 404 otherwise).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Literal

from score_chassis.decider import Decider, NotKnownYet, Refused
from score_contracts.events import (
    Event,
    Improvement,
    VisitCancelled,
    VisitCompleted,
    VisitScheduled,
)

# What the local views know, as plain values.


@dataclass(frozen=True, slots=True)
class EnterpriseFacts:
    """An enterprise as the visits service knows it from the enrolment stream."""

    known: bool = False
    """Its registration has arrived (and with it the region its visits are published in)."""
    country: str | None = None
    region: str | None = None
    modules: frozenset[int] = frozenset()
    """Modules it has an enrolment in."""
    withdrawn_on: dt.date | None = None
    rebuilding: bool = False
    """The views are being rebuilt from the stream: a fact they lack, a withdrawal among them,
    may only not have been read again yet."""


@dataclass(frozen=True, slots=True)
class TrainerFacts:
    """A trainer as the visits service knows it from the enrolment stream."""

    known: bool = False
    """Its registration or a certification has arrived."""
    modules: frozenset[int] = frozenset()
    """Modules it is certified for."""


UNKNOWN_ENTERPRISE = EnterpriseFacts()
UNKNOWN_TRAINER = TrainerFacts()

Place = tuple[str, str]
"""(country, region): where a visit's events are published, its enterprise's region."""

# Commands.


@dataclass(frozen=True, slots=True)
class ScheduleVisit:
    visit_id: str
    enterprise_id: str
    trainer_id: str
    module: int
    scheduled_for: dt.date
    enterprise: EnterpriseFacts = UNKNOWN_ENTERPRISE
    trainer: TrainerFacts = UNKNOWN_TRAINER
    place: Place | None = None


@dataclass(frozen=True, slots=True)
class CompleteVisit:
    visit_id: str
    completed_on: dt.date
    duration_hours: Decimal
    improvements: tuple[Improvement, ...] = ()
    enterprise: EnterpriseFacts = UNKNOWN_ENTERPRISE
    place: Place | None = None


@dataclass(frozen=True, slots=True)
class CancelVisit:
    visit_id: str
    reason: str
    cancelled_on: dt.date
    place: Place | None = None


Command = ScheduleVisit | CompleteVisit | CancelVisit

# State.

Status = Literal["new", "scheduled", "completed", "cancelled"]


@dataclass(frozen=True, slots=True)
class Visit:
    status: Status = "new"
    visit_id: str = ""
    enterprise_id: str = ""
    trainer_id: str = ""
    module: int = 0
    scheduled_for: dt.date | None = None
    completed_on: dt.date | None = None
    duration_hours: Decimal | None = None
    improvements: tuple[Improvement, ...] = ()
    cancelled_on: dt.date | None = None
    cancellation_reason: str | None = None


REBUILDING = (
    "the views of enterprises and trainers are being rebuilt from the enrolment stream, and "
    "may lack a fact that decides this (a withdrawal): retry shortly"
)


def decide(command: Command, state: Visit) -> list[Event]:
    match command:
        case ScheduleVisit(enterprise=e) if e.withdrawn_on is not None:
            raise Refused(
                f"the enterprise withdrew on {e.withdrawn_on}", rule="enterprise-withdrawn"
            )
        case ScheduleVisit(enterprise=e) if e.rebuilding:
            raise NotKnownYet(REBUILDING, rule="views-rebuilding-not-known-yet")
        case ScheduleVisit(enterprise=e) if not e.known:
            raise NotKnownYet(
                f"enterprise {command.enterprise_id} is not known here (yet): if it was "
                "registered a moment ago, retry shortly",
                rule="enterprise-not-known-yet",
            )
        case ScheduleVisit(module=m, enterprise=e) if m not in e.modules:
            raise NotKnownYet(
                f"no enrolment of the enterprise in module {m} is known here (yet): if it was "
                "enrolled a moment ago, retry shortly; otherwise enrol it first",
                rule="enrolment-not-known-yet",
            )
        case ScheduleVisit(trainer=t) if not t.known:
            raise NotKnownYet(
                f"trainer {command.trainer_id} is not known here (yet): if they were "
                "registered a moment ago, retry shortly",
                rule="trainer-not-known-yet",
            )
        case ScheduleVisit(module=m, trainer=t) if m not in t.modules:
            raise NotKnownYet(
                f"no certification of the trainer for module {m} is known here (yet): if it "
                "was recorded a moment ago, retry shortly; otherwise certify them first",
                rule="certification-not-known-yet",
            )
        case ScheduleVisit():
            return [
                VisitScheduled(
                    visit_id=command.visit_id,
                    enterprise_id=command.enterprise_id,
                    trainer_id=command.trainer_id,
                    module=command.module,
                    scheduled_for=command.scheduled_for,
                )
            ]
        case CompleteVisit() if state.status == "cancelled":
            raise Refused("the visit was cancelled", rule="no-completion-of-cancelled-visit")
        case CompleteVisit() if state.status == "completed":
            raise Refused("the visit is already completed", rule="visit-already-completed")
        case CompleteVisit(completed_on=d) if state.scheduled_for and d < state.scheduled_for:
            raise Refused(
                f"the visit is scheduled for {state.scheduled_for}: it cannot be completed "
                "before that day",
                rule="no-completion-before-scheduled-day",
            )
        case CompleteVisit(completed_on=d, enterprise=e) if e.withdrawn_on and d > e.withdrawn_on:
            raise Refused(
                f"the enterprise withdrew on {e.withdrawn_on}, before this completion",
                rule="enterprise-withdrawn",
            )
        case CompleteVisit(enterprise=e) if e.rebuilding:
            raise NotKnownYet(REBUILDING, rule="views-rebuilding-not-known-yet")
        case CompleteVisit():
            return [
                VisitCompleted(
                    visit_id=state.visit_id,
                    enterprise_id=state.enterprise_id,
                    trainer_id=state.trainer_id,
                    module=state.module,
                    completed_on=command.completed_on,
                    duration_hours=command.duration_hours,
                    improvements=list(command.improvements),
                )
            ]
        case CancelVisit() if state.status == "cancelled":
            raise Refused("the visit is already cancelled", rule="visit-already-cancelled")
        case CancelVisit() if state.status == "completed":
            raise Refused(
                "the visit took place: it cannot be cancelled",
                rule="no-cancellation-of-completed-visit",
            )
        case CancelVisit():
            return [
                VisitCancelled(
                    visit_id=state.visit_id,
                    enterprise_id=state.enterprise_id,
                    reason=command.reason,
                    cancelled_on=command.cancelled_on,
                )
            ]
    raise TypeError(f"not a command of the visit: {command!r}")


def evolve(state: Visit, event: Event) -> Visit:
    match event:
        case VisitScheduled():
            return replace(
                state,
                status="scheduled",
                visit_id=event.visit_id,
                enterprise_id=event.enterprise_id,
                trainer_id=event.trainer_id,
                module=event.module,
                scheduled_for=event.scheduled_for,
            )
        case VisitCompleted():
            return replace(
                state,
                status="completed",
                completed_on=event.completed_on,
                duration_hours=event.duration_hours,
                improvements=tuple(event.improvements),
            )
        case VisitCancelled():
            return replace(
                state,
                status="cancelled",
                cancelled_on=event.cancelled_on,
                cancellation_reason=event.reason,
            )
        case _:
            return state


visit = Decider[Command, Visit, Event](decide=decide, evolve=evolve, initial_state=Visit())
