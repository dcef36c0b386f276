"""The outbox relay against a real nats-server: every appended event reaches JetStream
once, in order, whatever happens to NATS, to the relay or to the order transactions commit in.

JetStream's own de-duplication forgets an id after the stream's duplicate window (10 minutes in
production). The tests that show what happens beyond it shrink the window to a second.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import PubAck
from sqlalchemy.exc import OperationalError

from score_chassis import store
from score_chassis.database import Database
from score_chassis.jetstream import (
    DUPLICATE_WINDOW_SECONDS,
    NatsConnection,
    ensure_stream,
    stream_config,
)
from score_chassis.relay import RELAY_LOCK_KEY, OutboxRelay, checkpoint_after
from score_chassis.store import NewEvent, RecordedEvent
from score_contracts.events import EnterpriseDetailsCorrected, EnterpriseRegistered, Headcount
from score_contracts.subjects import STREAMS, subject_for
from score_testing.nats import NatsServer
from score_testing.streams import stream_messages, wait_for

pytestmark = pytest.mark.nats

SOURCE = "/score/bo/enrolment"
WINDOW = 1.0
"""The duplicate window of the streams in the tests that outlive it, in seconds."""


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


async def forget_the_window(connection: NatsConnection) -> None:
    """Give the enrolment stream a one-second duplicate window."""
    config = replace(stream_config(STREAMS["enrolment"]), duplicate_window=WINDOW)
    await connection.jetstream.update_stream(config)


async def outlive_the_window() -> None:
    """Wait until JetStream no longer remembers the ids it was sent so far."""
    await asyncio.sleep(WINDOW + 0.5)


def crashing_before_the_delete(relay: OutboxRelay) -> OutboxRelay:
    """The relay publishes and has JetStream's acks, then dies before its outbox delete."""

    async def crash(*_: object, **__: object) -> None:
        raise OperationalError("DELETE", {}, ConnectionResetError("database away"))

    relay._forget = crash  # type: ignore[method-assign]
    return relay


async def publish_all(relay: OutboxRelay) -> None:
    async with asyncio.timeout(10):
        while await relay.pending_count():
            await relay.publish_pending()


async def stream_ids(nats_url: str) -> list[str]:
    return [h["Nats-Msg-Id"] for h, _ in await stream_messages(nats_url, "SCORE_ENROLMENT")]


async def test_a_restart_after_the_duplicate_window_publishes_nothing_twice(
    database: Database, connection: NatsConnection, nats_url: str
) -> None:
    await forget_the_window(connection)
    events = [registered(n) for n in range(20)]
    await append(database, *events)
    killed = crashing_before_the_delete(OutboxRelay(database, connection, batch_size=7))
    with pytest.raises(OperationalError):
        await killed.publish_pending()
    assert len(await stream_ids(nats_url)) == 7  # on the stream, and still in the outbox
    assert await killed.pending_count() == 20

    await outlive_the_window()
    restarted = OutboxRelay(database, connection, batch_size=7)
    await publish_all(restarted)
    assert await stream_ids(nats_url) == [e.event_id for e in events]


async def test_a_new_leader_learns_what_the_old_one_published_before_publishing(
    postgres_database: Database, connection: NatsConnection, nats_url: str
) -> None:
    database = postgres_database
    await forget_the_window(connection)
    events = [registered(n) for n in range(10)]
    await append(database, *events)
    old = crashing_before_the_delete(OutboxRelay(database, connection, poll_seconds=0.05))
    new = OutboxRelay(database, connection, poll_seconds=0.05)
    release = asyncio.Event()

    async def wedged_leader() -> None:
        # Waits for the lock behind the old leader, then holds it doing nothing.
        async with database.engine.connect() as conn:
            await conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": RELAY_LOCK_KEY})
            await release.wait()
            await conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": RELAY_LOCK_KEY})

    old.start()
    try:
        await wait_for(lambda: _count(nats_url, 10))
        wedged = asyncio.create_task(wedged_leader())
        await asyncio.sleep(0.3)  # queued for the lock
        new.start()  # a second replica: it waits for the lock too
        await old.stop()  # the leader dies with its outbox full of published events
        await outlive_the_window()
        release.set()  # the replica becomes the leader long after
        async with asyncio.timeout(10):
            await wedged
            await new.drained()
    finally:
        release.set()
        await old.stop()
        await new.stop()
    assert await stream_ids(nats_url) == [e.event_id for e in events]


async def _count(nats_url: str, expected: int) -> bool:
    return len(await stream_ids(nats_url)) == expected


def never_acknowledged() -> asyncio.Future[PubAck]:
    return asyncio.get_running_loop().create_future()


async def test_an_event_stored_though_its_ack_was_lost_is_not_published_again(
    database: Database, connection: NatsConnection, nats_url: str
) -> None:
    await forget_the_window(connection)
    events = [registered(n) for n in range(5)]
    await append(database, *events)
    relay = OutboxRelay(database, connection, publish_timeout=0.5)
    send = relay._send
    lost = {events[2].event_id}

    async def ack_lost(event: RecordedEvent, subject: str, *, after: str | None) -> Any:
        ack = await send(event, subject, after=after)
        # JetStream stores the lost one; its answer never comes.
        return never_acknowledged() if event.event_id in lost else ack

    relay._send = ack_lost  # type: ignore[method-assign]
    with pytest.raises(NatsTimeoutError):
        await relay.publish_pending()
    assert await relay.pending_count() == 1  # every event acknowledged has left the outbox

    relay._send = send  # type: ignore[method-assign]
    await outlive_the_window()
    await publish_all(relay)
    assert await stream_ids(nats_url) == [e.event_id for e in events]


async def test_nothing_sent_after_a_lost_publish_lands_before_it(
    database: Database, connection: NatsConnection, nats_url: str
) -> None:
    # One aggregate's history, sent in one pass; its third event is lost on the way (as when
    # the connection drops and nats-py sends the later ones after reconnecting).
    history = [registered(0)] + [
        NewEvent(
            EnterpriseDetailsCorrected(enterprise_id="ent-0", workforce=Headcount(women=n, men=n)),
            subject_for(EnterpriseDetailsCorrected, "bo", "santa_cruz"),
        )
        for n in range(1, 6)
    ]
    async with database.transaction() as conn:
        await store.append(conn, "enterprise/ent-0", 0, history, source=SOURCE)
    relay = OutboxRelay(database, connection, publish_timeout=0.5)
    send = relay._send
    lost = history[2].event_id

    async def losing(event: RecordedEvent, subject: str, *, after: str | None) -> Any:
        if event.event_id == lost:
            return never_acknowledged()
        return await send(event, subject, after=after)

    relay._send = losing  # type: ignore[method-assign]
    with pytest.raises(NatsTimeoutError):
        await relay.publish_pending()
    assert await stream_ids(nats_url) == [e.event_id for e in history[:2]]
    assert await relay.pending_count() == 4

    relay._send = send  # type: ignore[method-assign]
    reads = 0
    reconcile = relay.reconcile

    async def counted(stream: str) -> int:
        nonlocal reads
        reads += 1
        return await reconcile(stream)

    relay.reconcile = counted  # type: ignore[method-assign]
    await publish_all(relay)
    assert reads == 1  # the failed pass left its stream untrusted
    assert await stream_ids(nats_url) == [e.event_id for e in history]
    versions = [
        body["streamversion"] for _, body in await stream_messages(nats_url, "SCORE_ENROLMENT")
    ]
    assert versions == [1, 2, 3, 4, 5, 6]


async def test_a_stream_made_again_is_read_from_its_start(
    database: Database, connection: NatsConnection, nats_url: str
) -> None:
    await forget_the_window(connection)
    old = [registered(n) for n in range(10)]
    await append(database, *old)
    await publish_all(OutboxRelay(database, connection))  # the checkpoint is at 10
    await connection.jetstream.delete_stream("SCORE_ENROLMENT")
    await ensure_stream(connection.jetstream, STREAMS["enrolment"])
    await forget_the_window(connection)
    new = [registered(n) for n in range(10, 13)]
    await append(database, *new)
    with pytest.raises(OperationalError):
        await crashing_before_the_delete(OutboxRelay(database, connection)).publish_pending()
    assert await stream_ids(nats_url) == [e.event_id for e in new]  # sequences 1 to 3

    await outlive_the_window()
    later = registered(13)
    await append(database, later)
    await publish_all(OutboxRelay(database, connection))
    assert await stream_ids(nats_url) == [e.event_id for e in [*new, later]]


async def test_a_stream_made_again_and_refilled_past_the_checkpoint_is_read_from_its_start(
    database: Database, connection: NatsConnection, nats_url: str
) -> None:
    await forget_the_window(connection)
    old = [registered(n) for n in range(5)]
    await append(database, *old)
    await publish_all(OutboxRelay(database, connection))  # the checkpoint is at 5
    await connection.jetstream.delete_stream("SCORE_ENROLMENT")
    await ensure_stream(connection.jetstream, STREAMS["enrolment"])
    await forget_the_window(connection)
    new = [registered(n) for n in range(5, 8)]
    await append(database, *new)
    with pytest.raises(OperationalError):
        await crashing_before_the_delete(OutboxRelay(database, connection)).publish_pending()
    # An operator restores the old messages after them: the stream is past the checkpoint again.
    client = await nats.connect(nats_url)
    try:
        for event in old:
            await client.jetstream().publish(
                event.subject, b"{}", headers={"Nats-Msg-Id": event.event_id}
            )
    finally:
        await client.close()

    await outlive_the_window()
    await publish_all(OutboxRelay(database, connection))
    assert await stream_ids(nats_url) == [e.event_id for e in [*new, *old]]


async def test_a_relay_idle_past_the_duplicate_window_learns_what_another_published(
    database: Database, connection: NatsConnection, nats_url: str
) -> None:
    # Two relays at once: a leader whose lock went with its database session, unaware.
    await forget_the_window(connection)
    first, second = registered(1), registered(2)
    relay = OutboxRelay(database, connection)
    await append(database, first)
    await publish_all(relay)
    await append(database, second)
    with pytest.raises(OperationalError):
        await crashing_before_the_delete(OutboxRelay(database, connection)).publish_pending()

    await outlive_the_window()
    await publish_all(relay)
    assert await stream_ids(nats_url) == [first.event_id, second.event_id]


async def test_the_steady_state_costs_one_message_to_nats_per_event(
    database: Database, connection: NatsConnection
) -> None:
    relay = OutboxRelay(database, connection, batch_size=7)
    await append(database, registered(0))
    await publish_all(relay)  # the first pass reads the stream: it has just started

    client = connection.client
    calls: list[str] = []  # every request (a JetStream API call), publish and subscription
    request, publish, subscribe = client.request, client.publish, client.subscribe

    def counted(name: str, call: Any) -> Any:
        def counting(subject: str, *args: Any, **kwargs: Any) -> Any:
            calls.append(f"{name} {subject}")
            return call(subject, *args, **kwargs)

        return counting

    client.request = counted("request", request)  # type: ignore[method-assign]
    client.publish = counted("publish", publish)  # type: ignore[method-assign]
    client.subscribe = counted("subscribe", subscribe)  # type: ignore[method-assign]
    events = [registered(n) for n in range(1, 21)]
    try:
        for chunk in (events[:3], events[3:]):
            await append(database, *chunk)
            await publish_all(relay)
    finally:
        del client.request, client.publish, client.subscribe
    assert calls == [f"publish {e.subject}" for e in events]
    assert (await connection.jetstream.stream_info("SCORE_ENROLMENT")).state.consumer_count == 0


async def test_republishing_after_the_duplicate_window_sends_only_what_the_stream_lost(
    database: Database, relay: OutboxRelay, connection: NatsConnection, nats_url: str
) -> None:
    await forget_the_window(connection)
    events = [registered(n) for n in range(10)]
    await append(database, *events)
    async with asyncio.timeout(10):
        await relay.drained()
    for sequence in (3, 7):  # the stream lost two of them
        await connection.jetstream.delete_msg("SCORE_ENROLMENT", sequence)

    await outlive_the_window()
    assert await relay.republish(after=0) == 10
    assert sorted(await stream_ids(nats_url)) == sorted(e.event_id for e in events)
    assert (await stream_ids(nats_url))[-2:] == [events[2].event_id, events[6].event_id]


def ack(seq: int, *, duplicate: bool = False) -> PubAck:
    return PubAck(stream="SCORE_ENROLMENT", seq=seq, duplicate=duplicate or None)


def test_the_checkpoint_moves_over_the_relays_own_messages_only() -> None:
    assert checkpoint_after(10, [ack(11), ack(12), ack(13)]) == (13, True)
    # A copy JetStream dropped still names the message that holds the event.
    assert checkpoint_after(10, [ack(11), ack(9, duplicate=True), ack(12)]) == (12, True)
    assert checkpoint_after(10, [ack(11), ack(12, duplicate=True), ack(13)]) == (13, True)
    # Someone else's message at 12: the relay must read it before trusting the stream again.
    assert checkpoint_after(10, [ack(11), ack(13)]) == (11, False)
    # A new message at or below the checkpoint: the stream was made again.
    assert checkpoint_after(10, [ack(1), ack(2)]) == (10, False)


async def test_a_relay_woken_as_it_is_stopped_stops(
    database: Database, connection: NatsConnection
) -> None:
    relay = OutboxRelay(database, connection, poll_seconds=10)
    relay.start()
    await asyncio.sleep(0.5)  # idle: nothing to publish
    relay.notify()  # the wakeup is under way when the stop comes
    stopping = asyncio.create_task(relay.stop())
    stopped, _ = await asyncio.wait([stopping], timeout=5)
    assert stopped, "the relay went on"


async def test_a_relay_stops_though_a_publish_turns_its_cancellation_into_an_error(
    database: Database, connection: NatsConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As a client library may: the cancellation of a wait for an ack comes out as a timeout,
    # which the relay takes for a failed pass, and it would go on relaying.
    async def swallowing() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise TimeoutError from None
        return 0

    relay = OutboxRelay(database, connection, poll_seconds=0.05)
    monkeypatch.setattr(relay, "publish_pending", swallowing)
    relay.start()
    await asyncio.sleep(0.3)  # in a publish
    stopping = asyncio.create_task(relay.stop())
    stopped, _ = await asyncio.wait([stopping], timeout=5)
    assert stopped, "the relay went on"
