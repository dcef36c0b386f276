"""The outbox relay against a real nats-server: every appended event reaches JetStream
once, in order, whatever happens to NATS or to the order transactions commit in."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
from sqlalchemy.exc import OperationalError

from score_chassis import store
from score_chassis.database import Database
from score_chassis.jetstream import (
    DUPLICATE_WINDOW_SECONDS,
    NatsConnection,
    ensure_stream,
    stream_config,
)
from score_chassis.nats_server import NatsServer
from score_chassis.relay import OutboxRelay
from score_chassis.store import NewEvent
from score_chassis.testing.streams import stream_messages
from score_contracts.events import EnterpriseRegistered, Headcount
from score_contracts.subjects import STREAMS, subject_for

pytestmark = pytest.mark.nats

SOURCE = "/score/bo/enrolment"


def registered(n: int, region: str = "santa_cruz") -> NewEvent:
    event = EnterpriseRegistered(
        enterprise_id=f"ent-{n}",
        name=f"Enterprise {n}",
        tax_id=f"{n:08d}",
        country="bo",
        region=region,
        sector="manufacturing",
        chamber="CAINCO",
        workforce=Headcount(women=20, men=30),
        registered_on=dt.date(2017, 1, 1),
    )
    return NewEvent(event, subject_for(event, "bo", region))


async def append(database: Database, *events: NewEvent) -> None:
    async with database.transaction() as conn:
        for new in events:
            await store.append(conn, new.event.aggregate_subject, 0, [new], source=SOURCE)


@pytest.fixture
async def connection(nats_url: str) -> AsyncIterator[NatsConnection]:
    nc = NatsConnection(nats_url, name="test-relay")
    nc.start()
    async with asyncio.timeout(10):
        await nc.ready.wait()
    await ensure_stream(nc.jetstream, STREAMS["enrolment"])
    try:
        yield nc
    finally:
        await nc.close()


@pytest.fixture
async def relay(database: Database, connection: NatsConnection) -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(database, connection, batch_size=7, poll_seconds=0.1)
    relay.start()
    try:
        yield relay
    finally:
        await relay.stop()


async def test_every_appended_event_reaches_the_stream_once_as_a_cloudevent(
    database: Database, relay: OutboxRelay, nats_url: str
) -> None:
    events = [registered(n) for n in range(20)]
    await append(database, *events)
    relay.notify()
    async with asyncio.timeout(10):
        await relay.drained()
    messages = await stream_messages(nats_url, "SCORE_ENROLMENT")
    assert [headers["Nats-Msg-Id"] for headers, _ in messages] == [e.event_id for e in events]
    headers, body = messages[0]
    assert headers["Content-Type"] == "application/cloudevents+json"
    assert body["id"] == events[0].event_id
    assert body["type"] == "org.ilo.score.enrolment.enterprise_registered.v1"
    assert body["source"] == SOURCE
    assert body["subject"] == "enterprise/ent-0"
    assert body["streamversion"] == 1
    assert body["data"]["workforce"] == {"women": 20, "men": 30}


async def test_relaying_the_same_range_twice_publishes_each_event_once(
    database: Database, relay: OutboxRelay, nats_url: str
) -> None:
    events = [registered(n) for n in range(10)]
    await append(database, *events)
    async with asyncio.timeout(10):
        await relay.drained()
    assert await relay.republish(after=0) == 10  # the whole range, again
    messages = await stream_messages(nats_url, "SCORE_ENROLMENT")
    assert sorted(h["Nats-Msg-Id"] for h, _ in messages) == sorted(e.event_id for e in events)


async def test_appends_succeed_while_nats_is_down_and_arrive_when_it_is_back(
    database: Database, relay: OutboxRelay, nats_server: NatsServer, nats_url: str
) -> None:
    await append(database, registered(1))
    async with asyncio.timeout(10):
        await relay.drained()
    nats_server.stop()
    down = [registered(n) for n in range(2, 12)]
    await append(database, *down)  # the store does not need NATS
    relay.notify()
    await asyncio.sleep(0.3)  # give the relay a chance to fail while NATS is down
    assert await relay.pending_count() == 10
    nats_server.restart()
    async with asyncio.timeout(20):
        await relay.drained()
    ids = [h["Nats-Msg-Id"] for h, _ in await stream_messages(nats_url, "SCORE_ENROLMENT")]
    assert ids[1:] == [e.event_id for e in down]


async def test_no_event_is_skipped_when_transactions_commit_out_of_position_order(
    postgres_database: Database, connection: NatsConnection, nats_url: str
) -> None:
    database = postgres_database
    relay = OutboxRelay(database, connection, poll_seconds=0.05)
    early, late = registered(1), registered(2)
    early_appended, late_committed = asyncio.Event(), asyncio.Event()

    async def slow_writer() -> None:
        # Takes the lower position first but commits last.
        async with database.transaction() as conn:
            await store.append(conn, "enterprise/ent-1", 0, [early], source=SOURCE)
            early_appended.set()
            await late_committed.wait()
            assert await relay.publish_pending() == 1  # only the late one is visible yet

    async def fast_writer() -> None:
        await early_appended.wait()
        await append(database, late)
        late_committed.set()

    await asyncio.gather(slow_writer(), fast_writer())
    assert await relay.publish_pending() == 1  # the early one, now committed
    async with database.transaction(write=False) as conn:
        positions = {e.event_id: e.position for e in await store.read_all(conn)}
    assert positions[early.event_id] < positions[late.event_id]
    ids = [h["Nats-Msg-Id"] for h, _ in await stream_messages(nats_url, "SCORE_ENROLMENT")]
    assert ids == [late.event_id, early.event_id]


async def test_the_relay_outlives_a_database_failure(
    database: Database, connection: NatsConnection, nats_url: str
) -> None:
    relay = OutboxRelay(database, connection, poll_seconds=0.05)
    publish_pending = relay.publish_pending
    failures = {"left": 2}

    async def failing_at_first() -> int:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("SELECT", {}, ConnectionRefusedError("database away"))
        return await publish_pending()

    relay.publish_pending = failing_at_first  # type: ignore[method-assign]
    event = registered(99)
    await append(database, event)
    relay.start()
    try:
        async with asyncio.timeout(10):
            await relay.drained()
    finally:
        await relay.stop()
    assert failures["left"] == 0
    ids = [h["Nats-Msg-Id"] for h, _ in await stream_messages(nats_url, "SCORE_ENROLMENT")]
    assert ids == [event.event_id]


async def test_only_the_producer_changes_an_existing_stream(connection: NatsConnection) -> None:
    js = connection.jetstream
    spec = STREAMS["enrolment"]
    # Someone configured the stream otherwise (an operator, an older version).
    await js.update_stream(replace(stream_config(spec), duplicate_window=60.0))

    await ensure_stream(js, spec, update_existing=False)  # a consumer or a tool
    assert (await js.stream_info(spec.name)).config.duplicate_window == 60.0

    await ensure_stream(js, spec)  # the producer
    assert (await js.stream_info(spec.name)).config.duplicate_window == DUPLICATE_WINDOW_SECONDS
