"""The visits service's routes, on an in-memory unit of work and fake views: given what the
views know and a visit's events, when a command goes through its route, then these events,
published in the enterprise's region, this answer, and the visit list in step.

What the views are made of (enrolment's events, in any order) is test_views.py; the rules
themselves are test_domain.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from score_chassis.commands import Commands, Outcome
from score_chassis.decider import NotKnownYet, Refused
from score_chassis.errors import NotFound
from score_chassis.http.inputs import Written
from score_contracts.events import Event, VisitCancelled, VisitCompleted, VisitScheduled
from score_testing.commands import FakeUnitOfWork
from score_visits import handlers
from score_visits.domain import (
    CancelVisit,
    CompleteVisit,
    EnterpriseFacts,
    Place,
    ScheduleVisit,
    TrainerFacts,
    Visit,
)

DAY = dt.date(2018, 5, 8)
SANTA_CRUZ: Place = ("bo", "santa_cruz")

scheduled = VisitScheduled(
    visit_id="vis-1", enterprise_id="ent-1", trainer_id="tra-1", module=1, scheduled_for=DAY
)


@dataclass
class FakeViews:
    """What the views know of enrolment's events, and the visit list, in memory."""

    enterprises: dict[str, EnterpriseFacts] = field(default_factory=dict)
    trainers: dict[str, TrainerFacts] = field(default_factory=dict)
    listed: dict[str, tuple[str, Place, str, int]] = field(default_factory=dict)
    """visit id → (enterprise id, place, status, version)."""

    async def enterprise_facts(self, enterprise_id: str) -> EnterpriseFacts:
        return self.enterprises.get(enterprise_id, EnterpriseFacts())

    async def trainer_facts(self, trainer_id: str) -> TrainerFacts:
        return self.trainers.get(trainer_id, TrainerFacts())

    async def place_of(self, visit_id: str) -> tuple[str, Place] | None:
        found = self.listed.get(visit_id)
        return None if found is None else (found[0], found[1])

    async def record(self, outcome: Outcome[Visit], place: Place) -> None:
        state = outcome.state
        self.listed[state.visit_id] = (state.enterprise_id, place, state.status, outcome.version)


def known(**enterprise: object) -> FakeViews:
    facts: dict[str, object] = {
        "known": True,
        "country": "bo",
        "region": "santa_cruz",
        "modules": frozenset({1}),
    }
    return FakeViews(
        enterprises={"ent-1": EnterpriseFacts(**(facts | enterprise))},  # type: ignore[arg-type]
        trainers={"tra-1": TrainerFacts(known=True, modules=frozenset({1}))},
    )


def service(
    views: FakeViews, *history: Event
) -> tuple[Commands[FakeViews], FakeUnitOfWork[FakeViews]]:
    uow = FakeUnitOfWork(views).given(*history)
    return Commands(uow, handlers.routes()), uow


def schedule() -> ScheduleVisit:
    return ScheduleVisit(
        visit_id="vis-1", enterprise_id="ent-1", trainer_id="tra-1", module=1, scheduled_for=DAY
    )


def complete(on: dt.date = DAY) -> CompleteVisit:
    return CompleteVisit(visit_id="vis-1", completed_on=on, duration_hours=Decimal("3"))


async def test_a_visit_is_scheduled_listed_and_published_in_the_enterprise_s_region() -> None:
    commands, uow = service(known())
    answer = await commands.execute(schedule())
    assert answer == Written(id="vis-1", version=1)
    assert uow.appended == [scheduled]
    assert uow.subjects == ["score.bo.santa_cruz.visits.visit_scheduled.v1"]
    assert uow.views.listed["vis-1"] == ("ent-1", SANTA_CRUZ, "scheduled", 1)


async def test_a_visit_for_an_enterprise_not_heard_of_is_not_known_yet() -> None:
    commands, uow = service(FakeViews())
    with pytest.raises(NotKnownYet) as refused:
        await commands.execute(schedule())
    assert refused.value.rule == "enterprise-not-known-yet"
    assert uow.appended == [] and uow.views.listed == {}


async def test_a_completion_learns_its_enterprise_and_region_from_the_visit_list() -> None:
    views = known()
    views.listed["vis-1"] = ("ent-1", SANTA_CRUZ, "scheduled", 1)
    commands, uow = service(views, scheduled)
    answer = await commands.execute(complete())
    assert answer == Written(id="vis-1", version=2)
    [done] = uow.appended
    assert isinstance(done, VisitCompleted)
    assert uow.subjects == ["score.bo.santa_cruz.visits.visit_completed.v1"]
    assert views.listed["vis-1"][2:] == ("completed", 2)


async def test_a_completion_after_the_enterprise_withdrew_is_refused() -> None:
    views = known(withdrawn_on=DAY)
    views.listed["vis-1"] = ("ent-1", SANTA_CRUZ, "scheduled", 1)
    commands, uow = service(views, scheduled)
    with pytest.raises(Refused) as refused:
        await commands.execute(complete(on=DAY + dt.timedelta(days=1)))
    assert refused.value.rule == "enterprise-withdrawn"
    assert uow.appended == []


@pytest.mark.parametrize(
    "command",
    [complete(), CancelVisit(visit_id="vis-1", reason="strike", cancelled_on=DAY)],
    ids=["completion", "cancellation"],
)
async def test_a_visit_never_scheduled_is_unknown(command: object) -> None:
    commands, uow = service(known())
    with pytest.raises(NotFound) as unknown:
        await commands.execute(command)
    assert (unknown.value.what, unknown.value.id) == ("visit", "vis-1")
    assert uow.appended == []


async def test_a_cancellation_is_published_where_the_visit_is_listed() -> None:
    views = known()
    views.listed["vis-1"] = ("ent-1", SANTA_CRUZ, "scheduled", 1)
    commands, uow = service(views, scheduled)
    await commands.execute(CancelVisit(visit_id="vis-1", reason="strike", cancelled_on=DAY))
    assert uow.appended == [
        VisitCancelled(visit_id="vis-1", enterprise_id="ent-1", reason="strike", cancelled_on=DAY)
    ]
    assert uow.subjects == ["score.bo.santa_cruz.visits.visit_cancelled.v1"]
    assert views.listed["vis-1"][2] == "cancelled"
