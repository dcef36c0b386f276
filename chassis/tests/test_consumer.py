"""The idempotent consumer against a real nats-server: duplicates change nothing, poison
messages are dead-lettered, and the consumer carries on."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import nats
import pytest
import sqlalchemy as sa
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.consumer import BatchHandler, IdempotentConsumer, Subscription
from score_chassis.database import Database
from score_chassis.jetstream import NatsConnection, ensure_stream
from score_chassis.metrics import EVENTS_CONSUMED
from score_chassis.relay import envelope_json
from score_chassis.store import RecordedEvent
from score_chassis.tables import dead_letters
from score_chassis.view import View, version_of
from score_contracts.envelope import Envelope, parse_envelope
from score_contracts.events import EnterpriseRegistered, Event, Headcount
from score_contracts.ids import uuid7
from score_contracts.subjects import STREAMS
from score_testing.streams import wait_for

pytestmark = pytest.mark.nats

SUBJECT = "score.bo.cochabamba.enrolment.enterprise_registered.v1"

handled = sa.Table(
    "test_handled", sa.MetaData(), sa.Column("event_id", sa.String(36), nullable=False)
)


def recorded(n: int) -> RecordedEvent:
    event = EnterpriseRegistered(
        enterprise_id=f"ent-{n}",
        name="Boshami",
        tax_id="42",
        country="bo",
        region="cochabamba",
        sector="textiles",
        chamber="CADEXCO",
        workforce=Headcount(women=80, men=20),
        registered_on=dt.date(2015, 3, 3),
    )
    return RecordedEvent(
        position=n,
        event_id=uuid7(),
        stream_id=event.aggregate_subject,
        version=1,
        type=event.event_type(),
        data=event.model_dump(mode="json"),
        metadata={"source": "/score/bo/enrolment", "correlation_id": "c", "causation_id": None},
        occurred_at=dt.datetime.now(dt.UTC),
    )


async def count_handled(database: Database, event_id: str | None = None) -> int:
    query = sa.select(sa.func.count()).select_from(handled)
    if event_id is not None:
        query = query.where(handled.c.event_id == event_id)
    async with database.transaction(write=False) as conn:
        return int((await conn.execute(query)).scalar_one())


async def dead_lettered(database: Database) -> list[sa.Row[tuple[str | None, str]]]:
    async with database.transaction(write=False) as conn:
        result = await conn.execute(sa.select(dead_letters.c.event_id, dead_letters.c.error))
        return list(result.all())


@pytest.fixture
async def publish(nats_url: str) -> AsyncIterator[Callable[..., object]]:
    client = await nats.connect(nats_url)
    js = client.jetstream()
    await ensure_stream(js, STREAMS["enrolment"])

    async def send(payload: bytes, msg_id: str | None = None) -> None:
        headers = {"Nats-Msg-Id": msg_id} if msg_id else None
        await js.publish(SUBJECT, payload, headers=headers)

    yield send
    await client.close()


async def run_consumer(
    database: Database, nats_url: str, handler: Callable[..., object], **options: float
) -> tuple[IdempotentConsumer, NatsConnection]:
    async with database.transaction() as conn:
        await conn.run_sync(handled.metadata.create_all)
    connection = NatsConnection(nats_url, name="test-consumer")
    connection.start()
    subscription = Subscription("test-view", STREAMS["enrolment"], handler)  # type: ignore[arg-type]
    consumer = IdempotentConsumer(subscription, database, connection, fetch_timeout=0.2, **options)  # type: ignore[arg-type]
    consumer.start()
    return consumer, connection


async def record(conn: AsyncConnection, envelope: Envelope[Event]) -> None:
    await conn.execute(handled.insert().values(event_id=envelope.id))


@pytest.fixture
async def consumer(database: Database, nats_url: str) -> AsyncIterator[IdempotentConsumer]:
    consumer, connection = await run_consumer(database, nats_url, record, max_deliver=3)
    yield consumer
    await consumer.stop()
    await connection.close()


async def test_an_event_delivered_twice_is_handled_once(
    database: Database, consumer: IdempotentConsumer, publish: Callable[..., object]
) -> None:
    event = recorded(1)
    # Two copies in the stream, as after a republish outside the duplicate window.
    await publish(envelope_json(event))  # type: ignore[operator]
    await publish(envelope_json(event))  # type: ignore[operator]
    await publish(envelope_json(recorded(2)))  # type: ignore[operator]
    await wait_for(lambda: count_handled(database), within=10)
    await wait_for(lambda: consumer.lag == 0, within=10)
    assert await count_handled(database, event.event_id) == 1
    assert await count_handled(database) == 2


async def test_a_batch_handler_gets_each_new_event_of_a_batch_once_and_together(
    database: Database, nats_url: str, publish: Callable[..., object]
) -> None:
    first, second = recorded(11), recorded(12)
    for event in (first, first, second):  # in the stream before the consumer starts: one batch
        await publish(envelope_json(event))  # type: ignore[operator]
    batches: list[list[str]] = []

    async def record_all(conn: AsyncConnection, envelopes: Sequence[Envelope[Event]]) -> None:
        batches.append([envelope.id for envelope in envelopes])
        for envelope in envelopes:
            await record(conn, envelope)

    handled_before = EVENTS_CONSUMED.labels("test-view", "handled")._value.get()
    consumer, connection = await run_consumer(database, nats_url, BatchHandler(record_all))
    try:
        await wait_for(lambda: consumer.lag == 0, within=10)
    finally:
        await consumer.stop()
        await connection.close()
    assert batches == [[first.event_id, second.event_id]]
    assert await count_handled(database, first.event_id) == 1
    assert EVENTS_CONSUMED.labels("test-view", "handled")._value.get() - handled_before == 2


async def test_a_batch_with_new_events_moves_its_views_version_and_duplicates_do_not(
    database: Database, nats_url: str, publish: Callable[..., object]
) -> None:
    async def clear(conn: AsyncConnection) -> None:
        await conn.execute(handled.delete())

    view = View("test", "the test view")
    async with database.transaction() as conn:
        await conn.run_sync(handled.metadata.create_all)
    connection = NatsConnection(nats_url, name="test-consumer")
    connection.start()
    subscription = Subscription("test-view", STREAMS["enrolment"], record, clear=clear, view=view)
    consumer = IdempotentConsumer(subscription, database, connection, fetch_timeout=0.2)
    consumer.start()

    async def version() -> int:
        async with database.transaction(write=False) as conn:
            found = await version_of(conn, view)
        return dict(found).get("test-view", 0)

    try:
        first = recorded(21)
        await publish(envelope_json(first))  # type: ignore[operator]
        await wait_for(lambda: count_handled(database, first.event_id), within=10)
        moved_once = await version()
        assert moved_once >= 1
        await publish(envelope_json(first))  # type: ignore[operator]  # a duplicate
        await wait_for(lambda: consumer.lag == 0, within=10)
        assert await version() == moved_once
        second = recorded(22)
        await publish(envelope_json(second))  # type: ignore[operator]
        await wait_for(lambda: count_handled(database, second.event_id), within=10)
        assert await version() == moved_once + 1
    finally:
        await consumer.stop()
        await connection.close()


async def test_a_consumer_stops_even_if_a_request_swallows_the_cancellation(
    database: Database, nats_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    asking = asyncio.Event()
    real = JetStreamContext.consumer_info

    async def swallowing(self: JetStreamContext, *args: Any, **options: Any) -> object:
        if asking.is_set():
            return await real(self, *args, **options)
        asking.set()
        with contextlib.suppress(asyncio.CancelledError):  # as asyncio.wait_for can on 3.11
            await asyncio.sleep(5)
        raise NatsTimeoutError

    # Asked as the consumer starts (where its durable stands) and while it is idle (its lag).
    monkeypatch.setattr(JetStreamContext, "consumer_info", swallowing)
    consumer, connection = await run_consumer(database, nats_url, record)
    try:
        async with asyncio.timeout(10):
            await asking.wait()
        async with asyncio.timeout(3):
            await consumer.stop()
    finally:
        await connection.close()


async def test_an_unparseable_message_is_dead_lettered_and_the_consumer_carries_on(
    database: Database, consumer: IdempotentConsumer, publish: Callable[..., object]
) -> None:
    await publish(b"{not json", msg_id="poison-1")  # type: ignore[operator]
    wrong_shape = json.loads(envelope_json(recorded(3)))
    del wrong_shape["data"]["workforce"]
    await publish(json.dumps(wrong_shape).encode(), msg_id="poison-2")  # type: ignore[operator]
    good = recorded(4)
    await publish(envelope_json(good))  # type: ignore[operator]
    await wait_for(lambda: count_handled(database, good.event_id), within=10)
    letters = await wait_for(lambda: _two(dead_lettered(database)), within=10)
    assert sorted(row.event_id for row in letters) == ["poison-1", "poison-2"]
    assert all(row.error.startswith("unparseable") for row in letters)


async def _two(rows: object) -> object:
    found = await rows  # type: ignore[misc]
    return found if len(found) >= 2 else None


async def test_a_handler_that_keeps_failing_dead_letters_only_its_event(
    database: Database, nats_url: str, publish: Callable[..., object]
) -> None:
    bad = recorded(5)

    async def fails_on_bad(conn: AsyncConnection, envelope: Envelope[Event]) -> None:
        if envelope.id == bad.event_id:
            raise RuntimeError("cannot project this one")
        await record(conn, envelope)

    consumer, connection = await run_consumer(database, nats_url, fails_on_bad, max_deliver=2)
    try:
        good = recorded(6)
        await publish(envelope_json(bad))  # type: ignore[operator]
        await publish(envelope_json(good))  # type: ignore[operator]
        await wait_for(lambda: count_handled(database, good.event_id), within=10)
        letters = await wait_for(lambda: dead_lettered(database), within=15)
        assert [row.event_id for row in letters] == [bad.event_id]
        assert "cannot project this one" in letters[0].error
        assert await count_handled(database, bad.event_id) == 0
    finally:
        await consumer.stop()
        await connection.close()


async def test_an_event_handled_but_not_acknowledged_is_not_applied_again(
    database: Database, nats_url: str, publish: Callable[..., object]
) -> None:
    # The process dies after the commit and before the ack: JetStream redelivers after
    # ack_wait and the inbox must recognise the event.
    class CrashBeforeAck(IdempotentConsumer):
        crashed = False

        async def handle_batch(self, messages):  # type: ignore[no-untyped-def]
            if not self.crashed:
                self.crashed = True
                async with self.database.transaction() as conn:
                    await self._apply(conn, [parse_envelope(msg.data) for msg in messages])
                return  # no ack
            await super().handle_batch(messages)

    async with database.transaction() as conn:
        await conn.run_sync(handled.metadata.create_all)
    connection = NatsConnection(nats_url, name="test-crash")
    connection.start()
    consumer = CrashBeforeAck(
        Subscription("test-crash", STREAMS["enrolment"], record),
        database,
        connection,
        ack_wait=1.0,
        fetch_timeout=0.2,
    )
    consumer.start()
    try:
        event = recorded(7)
        await publish(envelope_json(event))  # type: ignore[operator]
        await wait_for(lambda: consumer.crashed, within=10)
        await wait_for(lambda: consumer.lag == 0, within=15)  # redelivered and acked
        assert await count_handled(database, event.event_id) == 1
    finally:
        await consumer.stop()
        await connection.close()


async def test_a_database_outage_never_turns_an_event_into_a_dead_letter(
    database: Database, nats_url: str, publish: Callable[..., object]
) -> None:
    event = recorded(8)
    failures = {"left": 4}  # more attempts than max_deliver allows a handler

    async def database_away(conn: AsyncConnection, envelope: Envelope[Event]) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("database away"))
        await record(conn, envelope)

    consumer, connection = await run_consumer(
        database, nats_url, database_away, max_deliver=2, outage_retry=0.05
    )
    try:
        await publish(envelope_json(event))  # type: ignore[operator]
        await wait_for(lambda: count_handled(database, event.event_id), within=15)
        assert await dead_lettered(database) == []
    finally:
        await consumer.stop()
        await connection.close()
