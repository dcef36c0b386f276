"""The views of enterprises and trainers: what they learn from each enrolment event, and that
duplicates and any order of delivery build the same, correct view."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Sequence

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from score_chassis.database import Database
from score_contracts.envelope import Envelope
from score_contracts.events import (
    EnterpriseDetailsCorrected,
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    Event,
    Headcount,
    Money,
    ParticipantsTrained,
    TrainerCertified,
    TrainerRegistered,
)
from score_contracts.examples import example_envelope
from score_visits import views
from score_visits.domain import EnterpriseFacts, TrainerFacts

Snap = Callable[[Database], Awaitable[dict[str, list[tuple[object, ...]]]]]

DAY = dt.date(2018, 3, 5)


def registered(enterprise_id: str, region: str = "santa_cruz") -> EnterpriseRegistered:
    return EnterpriseRegistered(
        enterprise_id=enterprise_id,
        name="Confecciones Chiquitanas S.R.L.",
        tax_id="1028547021",
        country="bo",
        region=region,
        sector="Textiles",
        chamber="CAINCO",
        workforce=Headcount(women=46, men=19),
        registered_on=DAY,
    )


def enrolled(enterprise_id: str, enrolment_id: str, module: int) -> EnterpriseEnrolled:
    return EnterpriseEnrolled(
        enterprise_id=enterprise_id,
        enrolment_id=enrolment_id,
        module=module,
        delivery="direct",
        delivery_cost=Money(amount="5600.00"),
        enrolled_on=DAY,
        exception_reason=None if module == 1 else "pilot",
    )


def withdrawn(enterprise_id: str, on: dt.date = DAY) -> EnterpriseWithdrawn:
    return EnterpriseWithdrawn(enterprise_id=enterprise_id, reason="closed", withdrawn_on=on)


def trainer_registered(trainer_id: str) -> TrainerRegistered:
    return TrainerRegistered(
        trainer_id=trainer_id,
        name="María Choque Mamani",
        sex="female",
        country="bo",
        region="santa_cruz",
        organisation="CAINCO",
        registered_on=DAY,
    )


def certified(trainer_id: str, *modules: int) -> TrainerCertified:
    return TrainerCertified(
        trainer_id=trainer_id, modules=list(modules), level="trainer", certified_on=DAY
    )


def history(*events: Event) -> list[Envelope[Event]]:
    """Envelopes numbered per aggregate, as the enrolment service publishes them."""
    versions: dict[str, int] = {}
    out: list[Envelope[Event]] = []
    for event in events:
        version = versions[event.aggregate_subject] = versions.get(event.aggregate_subject, 0) + 1
        out.append(example_envelope(event, stream_version=version))
    return out


STREAM = history(
    registered("ent-a"),
    enrolled("ent-a", "enr-a1", 1),
    enrolled("ent-a", "enr-a2", 2),
    withdrawn("ent-a"),
    registered("ent-b", region="la_paz"),
    enrolled("ent-b", "enr-b1", 1),
    EnterpriseDetailsCorrected(enterprise_id="ent-b", workforce=Headcount(women=50, men=50)),
    ParticipantsTrained(
        enterprise_id="ent-b",
        enrolment_id="enr-b1",
        module=1,
        trained_on=DAY,
        managers=Headcount(women=1, men=1),
        workers=Headcount(women=1, men=1),
    ),
    trainer_registered("tra-t"),
    certified("tra-t", 1, 2),
    certified("tra-t", 2, 3),
    certified("tra-u", 4),
)
"""A stream of two enterprises and two trainers, one of them never registered here."""

EXPECTED = {
    "vis_enterprises": [
        ("ent-a", "bo", "santa_cruz", DAY),
        ("ent-b", "bo", "la_paz", None),
    ],
    "vis_enrolments": [("enr-a1", "ent-a", 1), ("enr-a2", "ent-a", 2), ("enr-b1", "ent-b", 1)],
    "vis_trainers": [("tra-t",), ("tra-u",)],
    "vis_certifications": [("tra-t", 1), ("tra-t", 2), ("tra-t", 3), ("tra-u", 4)],
}


async def apply(database: Database, envelopes: Sequence[Envelope[Event]]) -> None:
    async with database.transaction() as conn:
        for envelope in envelopes:
            await views.project(conn, envelope)


def expected() -> dict[str, list[tuple[object, ...]]]:
    return {name: sorted(rows, key=repr) for name, rows in EXPECTED.items()}


async def test_the_views_learn_enrolments_withdrawals_and_certifications(
    views_database: Database, snapshot: Snap
) -> None:
    await apply(views_database, STREAM)
    assert await snapshot(views_database) == expected()


async def test_the_facts_read_back_as_the_rules_need_them(views_database: Database) -> None:
    await apply(views_database, STREAM)
    async with views_database.transaction(write=False) as conn:
        assert await views.enterprise_facts(conn, "ent-a") == EnterpriseFacts(
            known=True,
            country="bo",
            region="santa_cruz",
            modules=frozenset({1, 2}),
            withdrawn_on=DAY,
        )
        assert await views.enterprise_facts(conn, "ent-z") == EnterpriseFacts()
        assert await views.trainer_facts(conn, "tra-t") == TrainerFacts(
            known=True, modules=frozenset({1, 2, 3})
        )
        assert await views.trainer_facts(conn, "tra-z") == TrainerFacts()


async def test_a_withdrawal_before_the_registration_is_not_undone_by_it(
    views_database: Database,
) -> None:
    registration, withdrawal = history(registered("ent-c"), withdrawn("ent-c"))
    await apply(views_database, [withdrawal])
    async with views_database.transaction(write=False) as conn:
        only_withdrawn = await views.enterprise_facts(conn, "ent-c")
    assert not only_withdrawn.known and only_withdrawn.withdrawn_on == DAY
    await apply(views_database, [registration])  # the older event, arriving late
    async with views_database.transaction(write=False) as conn:
        facts = await views.enterprise_facts(conn, "ent-c")
    assert facts.known and facts.region == "santa_cruz" and facts.withdrawn_on == DAY


async def test_the_earliest_withdrawal_date_stands(views_database: Database) -> None:
    later, earlier = withdrawn("ent-d", DAY + dt.timedelta(days=9)), withdrawn("ent-d", DAY)
    await apply(views_database, history(later, earlier))
    await apply(views_database, history(later))
    async with views_database.transaction(write=False) as conn:
        assert (await views.enterprise_facts(conn, "ent-d")).withdrawn_on == DAY


async def test_clearing_empties_every_view(views_database: Database, snapshot: Snap) -> None:
    await apply(views_database, STREAM)
    async with views_database.transaction() as conn:
        await views.clear(conn)
    assert all(rows == [] for rows in (await snapshot(views_database)).values())


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    order=st.permutations(range(len(STREAM))),
    again=st.lists(st.integers(0, len(STREAM) - 1), max_size=6),
    batch=st.integers(1, len(STREAM) + 6),
)
async def test_any_order_any_duplicates_and_any_batches_build_the_same_view(
    views_database: Database, snapshot: Snap, order: list[int], again: list[int], batch: int
) -> None:
    # The handler alone, without the inbox that drops duplicates before it: the view must
    # not depend on that to be right. The consumer hands it a batch at a time.
    async with views_database.transaction() as conn:
        await views.clear(conn)
    arriving = [STREAM[i] for i in [*order, *again]]
    for start in range(0, len(arriving), batch):
        async with views_database.transaction() as conn:
            await views.project_all(conn, arriving[start : start + batch])
    assert await snapshot(views_database) == expected()
