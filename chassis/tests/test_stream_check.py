"""A stream that lost what the store published is seen, with the position to re-drive from."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from score_chassis import store
from score_chassis.database import Database
from score_chassis.jetstream import NatsConnection, ensure_stream
from score_chassis.relay import OutboxRelay
from score_chassis.store import NewEvent
from score_chassis.stream_check import compare_stream_with_store
from score_contracts.events import TrainerRegistered
from score_contracts.subjects import STREAMS, subject_for

pytestmark = pytest.mark.nats

ENROLMENT = STREAMS["enrolment"]


def registered(n: int) -> NewEvent:
    event = TrainerRegistered(
        trainer_id=f"tr-{n}",
        name="Ana",
        sex="female",
        country="bo",
        region="oruro",
        organisation="CEPB",
        registered_on=dt.date(2016, 1, 1),
    )
    return NewEvent(event, subject_for(event, "bo", "oruro"))


async def append(database: Database, count: int) -> list[int]:
    """Append `count` trainers' registrations; their positions."""
    positions = []
    async with database.transaction() as conn:
        for n in range(count):
            new = registered(n)
            await store.append(conn, f"trainer/tr-{n}", 0, [new], source="/score/bo/enrolment")
    async with database.transaction(write=False) as conn:
        positions = [event.position for event in await store.read_all(conn)]
    return positions


@pytest.fixture
async def connection(nats_url: str) -> AsyncIterator[NatsConnection]:
    nc = NatsConnection(nats_url, name="test-stream-check")
    nc.start()
    async with asyncio.timeout(10):
        await nc.ready.wait()
    await ensure_stream(nc.jetstream, ENROLMENT)
    try:
        yield nc
    finally:
        await nc.close()


async def publish_all(database: Database, connection: NatsConnection) -> None:
    relay = OutboxRelay(database, connection)
    while await relay.publish_pending():
        pass


async def test_a_stream_holding_everything_published_is_ok(
    database: Database, connection: NatsConnection
) -> None:
    positions = await append(database, 5)
    await publish_all(database, connection)
    await append(database, 0)
    found = await compare_stream_with_store(database, connection, ENROLMENT)
    assert (found.state, found.stored, found.in_stream, found.missing) == ("ok", 5, 5, 0)
    assert found.last_position == positions[-1]


async def test_events_still_in_the_outbox_are_not_missing(
    database: Database, connection: NatsConnection
) -> None:
    await append(database, 3)  # nothing relayed yet
    found = await compare_stream_with_store(database, connection, ENROLMENT)
    assert (found.state, found.pending, found.in_stream, found.missing) == ("ok", 3, 0, 0)


async def test_an_emptied_stream_is_behind_and_re_driven_from_the_start(
    database: Database, connection: NatsConnection
) -> None:
    await append(database, 4)
    await publish_all(database, connection)
    await connection.jetstream.purge_stream(ENROLMENT.name)
    found = await compare_stream_with_store(database, connection, ENROLMENT)
    assert (found.state, found.in_stream, found.missing, found.republish_from) == (
        "behind",
        0,
        4,
        1,
    )


async def test_a_deleted_stream_is_absent_and_re_driven_from_the_start(
    database: Database, connection: NatsConnection
) -> None:
    await append(database, 2)
    await publish_all(database, connection)
    await connection.jetstream.delete_stream(ENROLMENT.name)
    found = await compare_stream_with_store(database, connection, ENROLMENT)
    assert (found.state, found.in_stream, found.missing, found.republish_from) == (
        "absent",
        0,
        2,
        1,
    )


async def test_a_lost_tail_is_re_driven_from_its_first_position(
    database: Database, connection: NatsConnection
) -> None:
    positions = await append(database, 6)
    await publish_all(database, connection)
    for sequence in (5, 6):  # as if the broker came back from an older copy of its store
        await connection.jetstream.delete_msg(ENROLMENT.name, sequence)
    found = await compare_stream_with_store(database, connection, ENROLMENT)
    assert (found.state, found.missing, found.republish_from) == ("behind", 2, positions[4])


async def test_a_hole_before_the_last_message_is_re_driven_from_the_start(
    database: Database, connection: NatsConnection
) -> None:
    await append(database, 6)
    await publish_all(database, connection)
    await connection.jetstream.delete_msg(ENROLMENT.name, 2)
    found = await compare_stream_with_store(database, connection, ENROLMENT)
    assert (found.state, found.missing, found.republish_from) == ("behind", 1, 1)


async def test_without_nats_the_stream_is_unknown(database: Database) -> None:
    await append(database, 1)
    offline = NatsConnection("nats://127.0.0.1:1", name="offline")
    found = await compare_stream_with_store(database, offline, ENROLMENT)
    assert (found.state, found.stored, found.in_stream, found.missing) == ("unknown", 1, None, None)
