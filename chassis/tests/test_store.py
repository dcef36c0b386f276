"""The event store on SQLite and PostgreSQL: round trip, optimistic concurrency, outbox."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa

from score_chassis import store
from score_chassis.database import Database
from score_chassis.store import Causation, ConcurrencyError, NewEvent
from score_chassis.tables import outbox
from score_contracts.events import EnterpriseEnrolled, EnterpriseRegistered, Headcount, Money

SOURCE = "/score/bo/enrolment"
SUBJECT = "score.bo.la_paz.enrolment.enterprise_registered.v1"


def registered(enterprise_id: str = "ent-1") -> NewEvent:
    return NewEvent(
        EnterpriseRegistered(
            enterprise_id=enterprise_id,
            name="Tusequis",
            tax_id="998877",
            country="bo",
            region="la_paz",
            sector="textiles",
            chamber="CNI",
            workforce=Headcount(women=30, men=25),
            registered_on=dt.date(2016, 5, 2),
        ),
        SUBJECT,
    )


def enrolled(enrolment_id: str, enterprise_id: str = "ent-1") -> NewEvent:
    return NewEvent(
        EnterpriseEnrolled(
            enterprise_id=enterprise_id,
            enrolment_id=enrolment_id,
            module=1,
            delivery="direct",
            delivery_cost=Money(amount="4500.50"),
            enrolled_on=dt.date(2016, 6, 1),
        ),
        "score.bo.la_paz.enrolment.enterprise_enrolled.v1",
    )


async def test_appended_events_load_back_in_order(database: Database) -> None:
    first, second = registered(), enrolled("enr-1")
    async with database.transaction() as conn:
        version = await store.append(
            conn,
            "enterprise/ent-1",
            0,
            [first, second],
            source=SOURCE,
            causation=Causation(correlation_id="req-1"),
        )
    assert version == 2
    async with database.transaction(write=False) as conn:
        loaded = await store.load(conn, "enterprise/ent-1")
    assert [e.version for e in loaded] == [1, 2]
    assert [e.event_id for e in loaded] == [first.event_id, second.event_id]
    assert [e.payload() for e in loaded] == [first.event, second.event]
    assert loaded[0].metadata["correlation_id"] == "req-1"
    assert loaded[0].occurred_at.tzinfo is not None
    assert loaded[0].position < loaded[1].position


async def test_every_event_has_a_cause_and_a_chain(database: Database) -> None:
    by_request, on_its_own = registered(), enrolled("enr-1")
    async with database.transaction() as conn:
        await store.append(
            conn,
            "enterprise/ent-1",
            0,
            [by_request],
            source=SOURCE,
            causation=Causation(correlation_id="chain-1", causation_id="request-1"),
        )
        await store.append(conn, "enterprise/ent-1", 1, [on_its_own], source=SOURCE)
    async with database.transaction(write=False) as conn:
        first, second = await store.load(conn, "enterprise/ent-1")

    assert first.metadata["correlation_id"] == "chain-1"
    assert first.metadata["causation_id"] == "request-1"
    # Nothing caused it: a chain of its own, its own cause.
    assert second.metadata["correlation_id"] == second.metadata["causation_id"] == second.event_id


async def test_an_append_at_a_stale_version_is_refused_and_changes_nothing(
    database: Database,
) -> None:
    async with database.transaction() as conn:
        await store.append(conn, "enterprise/ent-1", 0, [registered()], source=SOURCE)
    with pytest.raises(ConcurrencyError):
        async with database.transaction() as conn:
            await store.append(conn, "enterprise/ent-1", 0, [enrolled("enr-x")], source=SOURCE)
    async with database.transaction(write=False) as conn:
        assert len(await store.load(conn, "enterprise/ent-1")) == 1
        pending = (await conn.execute(sa.select(sa.func.count()).select_from(outbox))).scalar()
    assert pending == 1


async def test_of_two_concurrent_appends_at_one_version_exactly_one_wins(
    database: Database,
) -> None:
    async with database.transaction() as conn:
        await store.append(conn, "enterprise/ent-1", 0, [registered()], source=SOURCE)
    both_read = asyncio.Barrier(2)

    async def writer(enrolment_id: str) -> str:
        # Both decide from version 1 before either writes: the classic lost-update race.
        async with database.transaction(write=False) as conn:
            version = await store.stream_version(conn, "enterprise/ent-1")
        await both_read.wait()
        try:
            async with database.transaction() as conn:
                await store.append(
                    conn, "enterprise/ent-1", version, [enrolled(enrolment_id)], source=SOURCE
                )
        except ConcurrencyError:
            return "refused"
        return "appended"

    outcomes = await asyncio.gather(writer("enr-a"), writer("enr-b"))
    assert sorted(outcomes) == ["appended", "refused"]
    async with database.transaction(write=False) as conn:
        loaded = await store.load(conn, "enterprise/ent-1")
    assert [e.version for e in loaded] == [1, 2]


async def test_the_race_is_decided_by_the_database_not_the_version_check(
    postgres_database: Database,
) -> None:
    # Two transactions both pass the version check; the unique (stream, version) key
    # must still stop the second. Only PostgreSQL lets them overlap like this: SQLite
    # serialises writers.
    database = postgres_database
    async with database.transaction() as conn:
        await store.append(conn, "enterprise/ent-1", 0, [registered()], source=SOURCE)
    checked = asyncio.Barrier(2)

    async def writer(enrolment_id: str) -> str:
        try:
            async with database.transaction() as conn:
                assert await store.stream_version(conn, "enterprise/ent-1") == 1
                await checked.wait()
                await store.append(
                    conn, "enterprise/ent-1", 1, [enrolled(enrolment_id)], source=SOURCE
                )
        except ConcurrencyError:
            return "refused"
        return "appended"

    assert sorted(await asyncio.gather(writer("a"), writer("b"))) == ["appended", "refused"]


async def test_every_append_is_queued_in_the_outbox_with_its_subject(database: Database) -> None:
    async with database.transaction() as conn:
        await store.append(conn, "enterprise/ent-1", 0, [registered()], source=SOURCE)
        await store.append(conn, "enterprise/ent-2", 0, [registered("ent-2")], source=SOURCE)
    async with database.transaction(write=False) as conn:
        rows = (await conn.execute(sa.select(outbox.c.subject))).scalars().all()
    assert rows == [SUBJECT, SUBJECT]


async def test_read_all_pages_through_every_stream_in_position_order(database: Database) -> None:
    async with database.transaction() as conn:
        for n in range(5):
            await store.append(conn, f"enterprise/e{n}", 0, [registered(f"e{n}")], source=SOURCE)
    async with database.transaction(write=False) as conn:
        first = await store.read_all(conn, limit=3)
        rest = await store.read_all(conn, after=first[-1].position, limit=3)
    assert [e.stream_id for e in first + rest] == [f"enterprise/e{n}" for n in range(5)]
