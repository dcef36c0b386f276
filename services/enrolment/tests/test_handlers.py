"""The enrolment service's routes, on an in-memory unit of work: given events, when a command
goes through its route, then these events, this answer, and the enterprise list in step.

What only a real database proves (the unique tax id under a race, SQLite's and PostgreSQL's
transactions) is in test_concurrency.py and test_api.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest

from score_chassis.commands import Commands, Idempotency, KeyReused, Outcome, Replayed
from score_chassis.decider import Refused
from score_chassis.errors import NotFound, VersionMismatch
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Headcount,
    Money,
    ParticipantsTrained,
    TrainerRegistered,
)
from score_enrolment import handlers
from score_enrolment.bodies import Written
from score_enrolment.domain.enterprise import (
    Enrol,
    Enterprise,
    RecordTraining,
    RegisterEnterprise,
    SizeRange,
    Withdraw,
)
from score_enrolment.domain.trainer import CertifyTrainer
from score_testing.commands import FakeUnitOfWork

DAY = dt.date(2017, 3, 1)
registered = EnterpriseRegistered(
    enterprise_id="ent-1",
    name="Delizia",
    tax_id="1020304050",
    country="bo",
    region="la_paz",
    sector="food",
    chamber="CNI",
    workforce=Headcount(women=40, men=60),
    registered_on=DAY,
)
enrolled = EnterpriseEnrolled(
    enterprise_id="ent-1",
    enrolment_id="enr-1",
    module=1,
    delivery="direct",
    delivery_cost=Money(amount="3000"),
    enrolled_on=DAY,
)
trainer = TrainerRegistered(
    trainer_id="tr-1",
    name="Rosa",
    sex="female",
    country="bo",
    region="la_paz",
    organisation="CNI",
    registered_on=DAY,
)


@dataclass
class FakeEnterpriseList:
    """The enterprise list, in memory: enterprise id → (country, tax id, version)."""

    rows: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    async def record(self, outcome: Outcome[Enterprise]) -> None:
        state = outcome.state
        key = (state.country, state.tax_id)
        holder = next((e for e, (c, t, _) in self.rows.items() if (c, t) == key), None)
        if holder not in (None, state.enterprise_id):
            raise Refused(f"registered: {holder}", rule="tax-id-registered-once")
        self.rows[state.enterprise_id] = (*key, outcome.version)


def register(**changes: object) -> RegisterEnterprise:
    fields: dict[str, object] = {
        "enterprise_id": "ent-1",
        "name": "Delizia",
        "tax_id": "1020304050",
        "country": "bo",
        "region": "la_paz",
        "sector": "food",
        "chamber": "CNI",
        "workforce": Headcount(women=40, men=60),
        "registered_on": DAY,
    }
    return RegisterEnterprise(**(fields | changes))  # type: ignore[arg-type]


def train(trainer_id: str | None = None) -> RecordTraining:
    return RecordTraining(
        enterprise_id="ent-1",
        enrolment_id="enr-1",
        trained_on=DAY,
        managers=Headcount(women=1, men=1),
        workers=Headcount(women=2, men=1),
        trainer_id=trainer_id,
    )


def service(
    *history: object,
) -> tuple[Commands[FakeEnterpriseList], FakeUnitOfWork[FakeEnterpriseList]]:
    uow = FakeUnitOfWork(FakeEnterpriseList()).given(*history)  # type: ignore[arg-type]
    return Commands(uow, handlers.routes(SizeRange(30, 250))), uow


async def test_a_registration_is_appended_listed_and_published_in_its_region() -> None:
    commands, uow = service()
    answer = await commands.execute(register())
    assert answer == Written(id="ent-1", version=1)
    assert uow.appended == [registered]
    assert uow.subjects == ["score.bo.la_paz.enrolment.enterprise_registered.v1"]
    assert uow.views.rows == {"ent-1": ("bo", "1020304050", 1)}


async def test_a_tax_id_held_by_another_enterprise_is_refused_from_the_list() -> None:
    commands, uow = service()
    uow.views.rows["ent-0"] = ("bo", "1020304050", 1)
    with pytest.raises(Refused) as refused:
        await commands.execute(register())
    assert refused.value.rule == "tax-id-registered-once"
    assert uow.appended == []


async def test_the_size_range_is_the_one_the_routes_are_made_with() -> None:
    commands, uow = service()
    with pytest.raises(Refused) as refused:
        await commands.execute(register(workforce=Headcount(women=5, men=5)))
    assert refused.value.rule == "size-range-needs-reason"
    assert uow.appended == []


@pytest.mark.parametrize(
    "command",
    [
        Withdraw(enterprise_id="nobody", reason="closing", withdrawn_on=DAY),
        CertifyTrainer(trainer_id="nobody", modules=(1,), level="trainer", certified_on=DAY),
    ],
)
async def test_a_command_to_an_aggregate_never_registered_is_unknown(command: object) -> None:
    commands, uow = service(registered)
    with pytest.raises(NotFound) as unknown:
        await commands.execute(command)
    assert unknown.value.id == "nobody"
    assert uow.appended == []


async def test_an_enrolment_answers_with_the_enrolment_it_made() -> None:
    commands, uow = service(registered)
    enrol = Enrol(
        enterprise_id="ent-1",
        enrolment_id="enr-1",
        module=1,
        delivery="direct",
        delivery_cost=Money(amount="3000"),
        enrolled_on=DAY,
    )
    answer = await commands.execute(enrol)
    assert answer == Written(id="ent-1", version=2, enrolment_id="enr-1")
    assert uow.appended == [enrolled]
    assert uow.views.rows["ent-1"][2] == 2


async def test_a_training_learns_from_the_trainer_s_stream_whether_they_are_registered() -> None:
    commands, uow = service(registered, enrolled)
    with pytest.raises(Refused) as refused:
        await commands.execute(train(trainer_id="tr-1"))
    assert refused.value.rule == "training-needs-registered-trainer"

    commands, uow = service(registered, enrolled, trainer)
    await commands.execute(train(trainer_id="tr-1"))
    [trained] = uow.appended
    assert isinstance(trained, ParticipantsTrained) and trained.trainer_id == "tr-1"


async def test_a_stale_version_is_a_mismatch_and_appends_nothing() -> None:
    commands, uow = service(registered, enrolled)
    with pytest.raises(VersionMismatch):
        await commands.execute(train(), expected_version=1)
    assert uow.appended == []
    await commands.execute(train(), expected_version=2)
    assert len(uow.appended) == 1


async def test_a_key_answered_once_is_answered_the_same_and_appends_nothing() -> None:
    commands, uow = service(registered, enrolled)
    key = Idempotency(owner="staff-1", key="k-1", fingerprint="f-1", status_code=201)
    first = await commands.execute(train(), idempotency=key)
    again = await commands.execute(train(), idempotency=key)
    assert again == Replayed(201, {"id": "ent-1", "version": 3})
    assert first == Written(id="ent-1", version=3)
    assert len(uow.appended) == 1
    with pytest.raises(KeyReused):
        other = Idempotency(owner="staff-1", key="k-1", fingerprint="f-2", status_code=201)
        await commands.execute(train(), idempotency=other)
    assert len(uow.appended) == 1


async def test_a_refused_command_leaves_no_key_behind() -> None:
    commands, uow = service()
    uow.views.rows["ent-0"] = ("bo", "1020304050", 1)
    key = Idempotency(owner="staff-1", key="k-1", fingerprint="f-1", status_code=201)
    with pytest.raises(Refused):
        await commands.execute(register(), idempotency=key)
    assert uow.answers == {}
