"""The routes of the visits service's commands: the visit decider, the visit's stream, the
facts each command learns from the views of enrolment's events, and the visit list kept in
the same transaction.

The facts are read in the append's transaction: an enrolment event arriving just after is no
different from one arriving a moment after the visit was decided. A visit is
published in its enterprise's region, which the facts (a schedule) or the visit list (a
completion, a cancellation) give; a completion or cancellation of a visit never scheduled is
the chassis's 404.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from score_chassis.commands import Outcome, Route, Work, routes_like
from score_chassis.http.inputs import Written
from score_contracts.events import Event
from score_contracts.subjects import subject_for
from score_visits.domain import (
    CancelVisit,
    CompleteVisit,
    EnterpriseFacts,
    Place,
    ScheduleVisit,
    TrainerFacts,
    Visit,
    visit,
)


class VisitViews(Protocol):
    """What the visits service knows besides a visit's own events: the views of enrolment's
    events, and its own list of visits."""

    async def enterprise_facts(self, enterprise_id: str) -> EnterpriseFacts: ...

    async def trainer_facts(self, trainer_id: str) -> TrainerFacts: ...

    async def place_of(self, visit_id: str) -> tuple[str, Place] | None:
        """A listed visit's enterprise and where it is published."""
        ...

    async def record(self, outcome: Outcome[Visit], place: Place) -> None:
        """Bring the visit's row of the list to the state the append left it in."""
        ...


def stream_of(visit_id: str) -> str:
    return f"visit/{visit_id}"


def _stream(command: Any) -> str:
    return stream_of(command.visit_id)


def _subject(command: Any, _state: Visit, event: Event) -> str:
    # `decide` refuses an enterprise whose region is not known before any subject is needed.
    assert command.place is not None
    return subject_for(event, *command.place)


def _written(command: Any, outcome: Outcome[Visit]) -> Written:
    return Written(id=command.visit_id, version=outcome.version)


async def _listed(work: Work[VisitViews], command: Any, outcome: Outcome[Visit]) -> None:
    assert command.place is not None
    await work.views.record(outcome, command.place)


async def _schedule_informed(work: Work[VisitViews], command: ScheduleVisit) -> ScheduleVisit:
    enterprise = await work.views.enterprise_facts(command.enterprise_id)
    trainer = await work.views.trainer_facts(command.trainer_id)
    place = (
        (enterprise.country, enterprise.region)
        if enterprise.country is not None and enterprise.region is not None
        else None
    )
    return replace(command, enterprise=enterprise, trainer=trainer, place=place)


async def _completion_informed(work: Work[VisitViews], command: CompleteVisit) -> CompleteVisit:
    listed = await work.views.place_of(command.visit_id)
    if listed is None:  # never scheduled: the chassis answers 404
        return command
    enterprise_id, place = listed
    return replace(
        command, enterprise=await work.views.enterprise_facts(enterprise_id), place=place
    )


async def _cancellation_informed(work: Work[VisitViews], command: CancelVisit) -> CancelVisit:
    listed = await work.views.place_of(command.visit_id)
    return command if listed is None else replace(command, place=listed[1])


def routes() -> dict[type, Route[Any, Visit, Written, VisitViews]]:
    """Every command of the service."""

    of_visit = routes_like(
        decider=visit,
        stream_of=_stream,
        subject_of=_subject,
        answer=_written,
        aggregate="visit",
        recorded=_listed,
    )
    return {
        ScheduleVisit: of_visit(creates=True, informed=_schedule_informed),
        CompleteVisit: of_visit(informed=_completion_informed),
        CancelVisit: of_visit(informed=_cancellation_informed),
    }
