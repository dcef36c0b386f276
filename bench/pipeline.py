"""B4 and B5: what every event passes through after its command, next to raw nats-py.

B4: a backlog of events stored with their outbox rows is published by the outbox relay to
JetStream, each acknowledged; the baseline publishes the same bodies and headers with
nats-py's asynchronous publish, every ack awaited, to a stream configured alike.

B5: the events B4 put in JetStream are consumed by the indicators' projection through the
idempotent consumer, until every one is committed and acknowledged; the baseline pull-fetches
the same messages in batches of the same size and acknowledges them, doing nothing else.

The relay and the consumer run in this process, as the services run them, against a SQLite
file and a nats-server of the run's own.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, PubAck
from nats.js.errors import NotFoundError

from bench.history import SOURCE, Message, enterprise_events, enterprises_for
from bench.measure import Stopwatch
from score_chassis import store, tables
from score_chassis.consumer import IdempotentConsumer, Subscription
from score_chassis.database import Database
from score_chassis.jetstream import NatsConnection, ensure_stream, stream_config
from score_chassis.migrate import migrate
from score_chassis.relay import OutboxRelay, envelope_json, headers_for
from score_cli.nats_server import NatsServer
from score_contracts.subjects import STREAMS, StreamSpec
from score_indicators.main import MIGRATIONS as INDICATORS_MIGRATIONS
from score_indicators.projection import project

RAW_STREAM = StreamSpec("bench", "BENCH_RAW", ("bench.raw.>",))
"""Where the B4 baseline publishes: configured as the services' streams are, on subjects of
its own (the same subjects would belong to two streams)."""
FETCH_BATCH = 200
"""Messages per fetch, in the consumer (the services' default) and in its baseline."""
IN_FLIGHT = 5000
"""Publishes awaiting their ack at once in the raw publisher."""
DONE_POLL_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class Rate:
    events: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def as_json(self) -> dict[str, object]:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(self.per_second, 1),
        }


@dataclass(frozen=True, slots=True)
class Pipeline:
    relay: Rate
    raw_publish: Rate
    catch_up: Rate
    raw_fetch: Rate
    seeded_seconds: float


async def seed(database: Database, events: int) -> None:
    """Store `events` events with their outbox rows: the backlog B4 relays.

    The rows `store.append` writes, inserted many to a statement into the empty store (one
    append per command would take longer than the relaying measured).
    """
    now = dt.datetime.now(dt.UTC)
    position = 0
    rows: list[dict[str, object]] = []
    pending: list[dict[str, object]] = []
    for n in range(enterprises_for(events)):
        stream_id, new_events = enterprise_events(n)
        for version, new in enumerate(new_events[: events - position], start=1):
            position += 1
            rows.append(
                {
                    "position": position,
                    "event_id": new.event_id,
                    "stream_id": stream_id,
                    "version": version,
                    "type": new.event.event_type(),
                    "data": new.event.model_dump(mode="json"),
                    "metadata": {
                        "source": SOURCE,
                        "subject": new.subject,
                        "correlation_id": new.event_id,
                        "causation_id": None,
                    },
                    "occurred_at": now,
                }
            )
            pending.append({"position": position, "subject": new.subject})
        if len(rows) >= 5000 or position == events:
            async with database.transaction() as conn:
                await conn.execute(tables.events.insert(), rows)
                await conn.execute(tables.outbox.insert(), pending)
            rows, pending = [], []


async def stored_messages(database: Database) -> list[Message]:
    """Every stored event as the relay publishes it: body and headers."""
    found: list[Message] = []
    after = 0
    while True:
        async with database.transaction(write=False) as conn:
            chunk = await store.read_all(conn, after=after, limit=5000)
        if not chunk:
            return found
        found += [
            Message(event.metadata["subject"], envelope_json(event), headers_for(event))
            for event in chunk
        ]
        after = chunk[-1].position


async def publish_all(
    js: JetStreamContext, messages: Iterable[Message], *, subject_prefix: str = ""
) -> int:
    """Publish with nats-py's asynchronous publish and wait for every ack: how many."""
    pending: collections.deque[asyncio.Future[PubAck]] = collections.deque()
    published = 0
    for message in messages:
        pending.append(
            await js.publish_async(
                subject_prefix + message.subject, message.body, headers=message.headers
            )
        )
        published += 1
        if len(pending) >= IN_FLIGHT:
            for _ in range(IN_FLIGHT // 2):
                await pending.popleft()  # raises if JetStream refused it
    while pending:
        await pending.popleft()
    return published


async def relay_backlog(database: Database, nats: NatsConnection, events: int) -> Rate:
    relay = OutboxRelay(database, nats, batch_size=500)
    watch = Stopwatch()
    published = 0
    while batch := await relay.publish_pending():
        published += batch
    if published != events:
        raise RuntimeError(f"the relay published {published} events of {events}")
    return Rate(published, watch.seconds)


async def raw_publish(js: JetStreamContext, messages: list[Message]) -> Rate:
    await js.add_stream(stream_config(RAW_STREAM))
    watch = Stopwatch()
    published = await publish_all(js, messages, subject_prefix="bench.raw.")
    seconds = watch.seconds
    await js.delete_stream(RAW_STREAM.name)
    return Rate(published, seconds)


async def _consumed(js: JetStreamContext, stream: str, durable: str, events: int) -> bool:
    info = await js.consumer_info(stream, durable)
    acknowledged = info.ack_floor.stream_seq if info.ack_floor else 0
    return bool(acknowledged and acknowledged >= events and not info.num_ack_pending)


async def _until_consumed(js: JetStreamContext, stream: str, durable: str, events: int) -> None:
    """Poll the consumer's state until its first `events` messages are acknowledged (the
    server tells no one when that happens)."""
    while True:
        await asyncio.sleep(DONE_POLL_SECONDS)
        try:
            if await _consumed(js, stream, durable, events):
                return
        except NotFoundError:  # the consumer is not made yet
            continue


async def catch_up(database: Database, nats: NatsConnection, events: int) -> Rate:
    """The indicators' projection consumes the stream until every event is committed."""
    durable = "bench-indicators-projection"
    consumer = IdempotentConsumer(
        Subscription(durable, STREAMS["enrolment"], project),
        database,
        nats,
        batch_size=FETCH_BATCH,
    )
    js = nats.jetstream
    watch = Stopwatch()
    consumer.start()
    try:
        await _until_consumed(js, STREAMS["enrolment"].name, durable, events)
        return Rate(events, watch.seconds)
    finally:
        await consumer.stop()


async def raw_fetch(js: JetStreamContext, events: int) -> Rate:
    """Pull-fetch the stream in batches and acknowledge each message, doing nothing else."""
    stream = STREAMS["enrolment"].name
    durable = "bench-raw-fetch"
    watch = Stopwatch()
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            max_ack_pending=max(1000, FETCH_BATCH * 4),
        ),
    )
    pull = await js.pull_subscribe_bind(durable=durable, stream=stream)
    received = 0
    while received < events:
        for msg in await pull.fetch(FETCH_BATCH, timeout=5.0):
            await msg.ack()
            received += 1
    await _until_consumed(js, stream, durable, events)
    seconds = watch.seconds
    await pull.unsubscribe()
    return Rate(received, seconds)


async def run(workdir: Path, events: int) -> Pipeline:
    """B4 and B5 on `events` events, in the folder `workdir` (which exists)."""
    with NatsServer(workdir / "nats") as server:
        outbox_store = Database(f"sqlite+aiosqlite:///{workdir / 'enrolment.db'}")
        projection = Database(f"sqlite+aiosqlite:///{workdir / 'indicators.db'}")
        nats = NatsConnection(server.url, name="bench")
        try:
            await migrate(outbox_store, [])
            await migrate(projection, [INDICATORS_MIGRATIONS])
            nats.start()
            await nats.ready.wait()
            js = nats.jetstream
            await ensure_stream(js, STREAMS["enrolment"])
            seeding = Stopwatch()
            await seed(outbox_store, events)
            seeded = seeding.seconds
            messages = await stored_messages(outbox_store)
            relayed = await relay_backlog(outbox_store, nats, events)
            published = await raw_publish(js, messages)
            del messages
            caught_up = await catch_up(projection, nats, events)
            fetched = await raw_fetch(js, events)
            return Pipeline(relayed, published, caught_up, fetched, seeded)
        finally:
            await nats.close()
            await outbox_store.dispose()
            await projection.dispose()
