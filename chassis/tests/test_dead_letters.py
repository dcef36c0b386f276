"""Dead letters an operator can list and retry, against a real nats-server and each database:
a retry that fails again keeps the letter, one that works applies the event once and removes
it, and one no retry can help is refused, saying why."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import nats
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import dead_letters
from score_chassis.consumer import IdempotentConsumer, Subscription
from score_chassis.database import Database
from score_chassis.dead_letters import DeadLetter, NotRetriable, Retrier
from score_chassis.errors import NotFound
from score_chassis.jetstream import NatsConnection, ensure_stream
from score_chassis.metrics import DEAD_LETTERS, DEAD_LETTERS_NOW
from score_chassis.relay import envelope_json
from score_chassis.store import RecordedEvent
from score_chassis.tables import inbox
from score_contracts.envelope import Envelope
from score_contracts.events import EnterpriseRegistered, Event, Headcount
from score_contracts.ids import uuid7
from score_contracts.subjects import STREAMS
from score_testing.streams import wait_for

SUBJECT = "score.bo.oruro.enrolment.enterprise_registered.v1"
CONSUMER = "test-dead-letters"

registered = sa.Table(
    "test_registered", sa.MetaData(), sa.Column("event_id", sa.String(36), nullable=False)
)


def registration(n: int) -> RecordedEvent:
    event = EnterpriseRegistered(
        enterprise_id=f"ent-{n}",
        name="Textiles Illimani",
        tax_id="1020304",
        country="bo",
        region="oruro",
        sector="textiles",
        chamber="CAINCO",
        workforce=Headcount(women=50, men=40),
        registered_on=dt.date(2016, 5, 2),
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


@dataclass
class Flaky:
    """A projection that fails while `broken`, as one with a bug until it is fixed."""

    broken: bool = True
    calls: list[str] = field(default_factory=list)

    async def __call__(self, conn: AsyncConnection, envelope: Envelope[Event]) -> None:
        self.calls.append(envelope.id)
        if self.broken:
            raise RuntimeError("projection bug: region oruro unknown")
        await conn.execute(registered.insert().values(event_id=envelope.id))


@dataclass
class Running:
    consumer: IdempotentConsumer
    handler: Flaky
    database: Database
    publish: Callable[[bytes, str | None], Awaitable[None]]

    @property
    def retriers(self) -> dict[str, Retrier]:
        return {self.consumer.name: self.consumer.retry_dead_letter}

    async def applied(self, event_id: str) -> int:
        query = sa.select(sa.func.count()).where(registered.c.event_id == event_id)
        async with self.database.transaction(write=False) as conn:
            return int((await conn.execute(query)).scalar_one())

    async def letters(self) -> list[DeadLetter]:
        async with self.database.transaction(write=False) as conn:
            return await dead_letters.latest(conn)

    async def letter_of(self, event_id: str) -> DeadLetter | None:
        return next((d for d in await self.letters() if d.event_id == event_id), None)


@pytest.fixture
async def running(database: Database, nats_url: str) -> AsyncIterator[Running]:
    async with database.transaction() as conn:
        await conn.run_sync(registered.metadata.create_all)
    client = await nats.connect(nats_url)
    js = client.jetstream()
    await ensure_stream(js, STREAMS["enrolment"])

    async def publish(payload: bytes, msg_id: str | None) -> None:
        await js.publish(SUBJECT, payload, headers={"Nats-Msg-Id": msg_id} if msg_id else None)

    connection = NatsConnection(nats_url, name="test-dead-letters")
    connection.start()
    handler = Flaky()
    subscription = Subscription(CONSUMER, STREAMS["enrolment"], handler)
    # One delivery: a failing handler dead-letters at once, with no backoff to wait out.
    consumer = IdempotentConsumer(
        subscription, database, connection, fetch_timeout=0.2, max_deliver=1
    )
    consumer.start()
    try:
        yield Running(consumer, handler, database, publish)
    finally:
        await consumer.stop()
        await connection.close()
        await client.close()


@pytest.mark.nats
async def test_a_retry_fails_while_the_handler_does_and_applies_once_when_it_is_fixed(
    running: Running,
) -> None:
    event = registration(1)
    await running.publish(envelope_json(event), event.event_id)
    letter = await wait_for(lambda: running.letter_of(event.event_id), within=10)
    assert (letter.consumer, letter.deliveries) == (CONSUMER, 1)
    assert letter.event_type == "org.ilo.score.enrolment.enterprise_registered.v1"
    assert "projection bug" in letter.error

    failed = await dead_letters.retry(running.database, running.retriers, letter.id)
    assert failed.outcome == "failed"
    assert "projection bug" in failed.detail
    kept = await running.letter_of(event.event_id)
    assert kept is not None and kept.id == letter.id
    assert kept.deliveries == 2 and kept.error.startswith("retry failed: RuntimeError(")
    assert await running.applied(event.event_id) == 0

    running.handler.broken = False
    retried = await dead_letters.retry(running.database, running.retriers, letter.id)
    assert retried.outcome == "retried"
    assert await running.applied(event.event_id) == 1
    assert await running.letters() == []
    # Asked again (a second operator, a double click): nothing there any more.
    with pytest.raises(NotFound):
        await dead_letters.retry(running.database, running.retriers, letter.id)
    assert await running.applied(event.event_id) == 1


@pytest.mark.nats
async def test_a_retry_of_an_event_handled_meanwhile_applies_nothing_twice(
    running: Running,
) -> None:
    event = registration(2)
    await running.publish(envelope_json(event), event.event_id)
    letter = await wait_for(lambda: running.letter_of(event.event_id), within=10)

    running.handler.broken = False
    # A republish outside the duplicate window delivers it again: handled this time.
    await running.publish(envelope_json(event), f"{event.event_id}-again")
    await wait_for(lambda: running.applied(event.event_id), within=10)
    calls = len(running.handler.calls)

    retried = await dead_letters.retry(running.database, running.retriers, letter.id)
    assert retried.outcome == "retried"
    assert await running.applied(event.event_id) == 1
    assert len(running.handler.calls) == calls  # the inbox answered: the handler was not run
    assert await running.letters() == []


@pytest.mark.nats
async def test_an_unparseable_dead_letter_is_refused_and_kept(running: Running) -> None:
    await running.publish(b"{not json", "poison-1")
    letter = await wait_for(lambda: running.letter_of("poison-1"), within=10)
    assert letter.event_type is None

    with pytest.raises(NotRetriable) as refused:
        await dead_letters.retry(running.database, running.retriers, letter.id)
    assert refused.value.rule == "unreadable-payload"
    assert "discard it" in refused.value.message
    assert [d.id for d in await running.letters()] == [letter.id]
    assert (await running.letters())[0].deliveries == letter.deliveries


async def insert(database: Database, consumer: str, payload: bytes = b"{}", n: int = 1) -> int:
    async with database.transaction() as conn:
        return await dead_letters.record(
            conn,
            consumer=consumer,
            subject=SUBJECT,
            event_id=f"event-{consumer}-{n}",
            deliveries=5,
            error="handler failed 5 times: RuntimeError()",
            payload=payload,
        )


async def test_a_dead_letter_of_a_consumer_the_service_no_longer_has_is_refused(
    database: Database,
) -> None:
    letter_id = await insert(database, "indicators-old-projection")
    with pytest.raises(NotRetriable) as refused:
        await dead_letters.retry(database, {}, letter_id)
    assert refused.value.rule == "unknown-consumer"
    assert "'indicators-old-projection'" in refused.value.message
    async with database.transaction(write=False) as conn:
        assert await dead_letters.get(conn, letter_id) is not None


async def test_listing_is_newest_first_by_consumer_and_in_pages(database: Database) -> None:
    before = DEAD_LETTERS.labels("a")._value.get()
    ids = {name: [await insert(database, name, n=n) for n in range(3)] for name in ("a", "b")}
    assert DEAD_LETTERS.labels("a")._value.get() - before == 3
    async with database.transaction(write=False) as conn:
        newest = await dead_letters.latest(conn, limit=4)
        assert [d.id for d in newest] == sorted(ids["a"] + ids["b"], reverse=True)[:4]
        of_a = await dead_letters.latest(conn, consumer="a", limit=2)
        assert [d.id for d in of_a] == ids["a"][:0:-1]
        rest = await dead_letters.latest(conn, consumer="a", limit=2, before=of_a[-1].id)
        assert [d.id for d in rest] == ids["a"][:1]
        assert await dead_letters.counts(conn) == {"a": 3, "b": 3}
        assert newest[0].recorded_at.tzinfo is not None


async def test_the_gauge_says_what_is_kept_now(database: Database) -> None:
    letter_id = await insert(database, "gauged", payload=json.dumps({"type": "x"}).encode())
    await dead_letters.measure(database, ["gauged", "quiet"])
    assert DEAD_LETTERS_NOW.labels("gauged")._value.get() == 1
    assert DEAD_LETTERS_NOW.labels("quiet")._value.get() == 0
    discarded = await dead_letters.discard(database, letter_id)
    assert discarded.event_type == "x"
    await dead_letters.measure(database, ["gauged"])
    assert DEAD_LETTERS_NOW.labels("gauged")._value.get() == 0
    with pytest.raises(NotFound):
        await dead_letters.discard(database, letter_id)


@pytest.mark.nats
async def test_retrying_all_reports_each_and_keeps_what_cannot_be_done(
    running: Running,
) -> None:
    good = registration(3)
    await running.publish(envelope_json(good), good.event_id)
    await running.publish(b"[]", "poison-2")
    await wait_for(lambda: running.letter_of("poison-2"), within=10)
    await wait_for(lambda: running.letter_of(good.event_id), within=10)
    running.handler.broken = False

    outcomes = await dead_letters.retry_all(running.database, running.retriers)
    assert sorted((o.event_id, o.outcome) for o in outcomes) == [
        (good.event_id, "retried"),
        ("poison-2", "refused"),
    ]
    assert [d.event_id for d in await running.letters()] == ["poison-2"]
    assert await running.applied(good.event_id) == 1
    async with running.database.transaction(write=False) as conn:
        remembered = await conn.execute(
            sa.select(inbox.c.event_id).where(inbox.c.consumer == CONSUMER)
        )
        assert list(remembered.scalars()) == [good.event_id]
