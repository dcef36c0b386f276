"""The outbox relay: publishes appended events to JetStream, in order, at least once.

The outbox is a set of pending rows, not a cursor over positions. A cursor ("publish
everything after position N") skips events on PostgreSQL, where a transaction that took
position 10 can commit after one that took 11: the cursor passes 11 before 10 is visible.
A pending set cannot skip: a late commit is simply still pending at the next pass.

An event leaves the outbox only after JetStream acknowledged it. A crash between the ack and
the delete re-publishes it, and JetStream drops the copy by its `Nats-Msg-Id`; consumers are
idempotent besides. Events are published one at a time in position order, so the events of
one aggregate reach the stream in version order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError

from score_chassis.database import Database
from score_chassis.jetstream import NatsConnection
from score_chassis.logs import get_logger
from score_chassis.metrics import EVENTS_PUBLISHED, OUTBOX_PENDING
from score_chassis.store import RecordedEvent, read_all, row_to_event
from score_chassis.tables import events, outbox
from score_contracts.envelope import CONTENT_TYPE
from score_contracts.events import BY_TYPE

log = get_logger(__name__)

# One relay per database: on PostgreSQL the replicas of a service elect one with this lock.
_RELAY_LOCK_KEY = 0x5C0BE_0001


def envelope_json(event: RecordedEvent) -> bytes:
    """The CloudEvents structured-mode body of a stored event."""
    model = BY_TYPE.get(event.type)
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.event_id,
        "source": event.metadata["source"],
        "type": event.type,
        "subject": event.stream_id,
        "time": event.occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "dataschema": model.schema_uri() if model else None,
        "streamversion": event.version,
        "correlationid": event.metadata.get("correlation_id"),
        "causationid": event.metadata.get("causation_id"),
        # The public streams never carry personal data (ADR 011).
        "data": model.public_data(event.data) if model else event.data,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def headers_for(event: RecordedEvent) -> dict[str, str]:
    return {"Nats-Msg-Id": event.event_id, "Content-Type": CONTENT_TYPE}


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        nats: NatsConnection,
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        publish_timeout: float = 5.0,
    ) -> None:
        self.database = database
        self.nats = nats
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify(self) -> None:
        """Something was appended: publish it now rather than at the next poll."""
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def drained(self) -> None:
        """Wait until the outbox is empty; bound it with `asyncio.timeout`."""
        while await self.pending_count():
            self.notify()
            await asyncio.sleep(0.02)

    async def pending_count(self) -> int:
        async with self.database.transaction(write=False) as conn:
            result = await conn.execute(sa.select(sa.func.count()).select_from(outbox))
            return int(result.scalar_one())

    async def _run(self) -> None:
        # The relay never gives up: whatever fails (NATS, the database), it waits and goes
        # on, the outbox keeping everything until then.
        while True:
            try:
                async with self._leadership():
                    await self._relay()
            except Exception as error:
                # The type only: a database error's text can quote event data.
                log.warning("relay.interrupted", error=type(error).__name__)
                await asyncio.sleep(self.poll_seconds)

    async def _relay(self) -> None:
        while True:
            await self.nats.ready.wait()
            try:
                published = await self.publish_pending()
            except (NatsError, JetStreamError, TimeoutError, ConnectionError) as error:
                log.warning("relay.publish_failed", error=str(error) or type(error).__name__)
                await self._sleep_or_wakeup(self.poll_seconds)
                continue
            if published < self.batch_size:
                await self._sleep_or_wakeup(self.poll_seconds)

    @contextlib.asynccontextmanager
    async def _leadership(self) -> Any:
        if self.database.is_sqlite:
            yield
            return
        # A session-level advisory lock, held for the relay's life on its own connection.
        async with self.database.engine.connect() as conn:
            while not (
                await conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": _RELAY_LOCK_KEY}
                )
            ).scalar_one():
                await conn.commit()
                await asyncio.sleep(self.poll_seconds)
            await conn.commit()
            log.info("relay.leader")
            try:
                yield
            finally:
                # A pooled connection would keep a session lock after we give it back.
                try:
                    await conn.execute(
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": _RELAY_LOCK_KEY}
                    )
                    await conn.commit()
                except Exception:  # the connection is broken: make sure it is not reused
                    await conn.invalidate()

    async def _sleep_or_wakeup(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        self._wakeup.clear()

    async def publish_pending(self) -> int:
        """Publish one batch of pending events; returns how many were published."""
        if not self.nats.connected:
            raise ConnectionError("NATS is not connected")
        async with self.database.transaction(write=False) as conn:
            result = await conn.execute(
                sa.select(
                    events.c.position,
                    events.c.event_id,
                    events.c.stream_id,
                    events.c.version,
                    events.c.type,
                    events.c.data,
                    events.c.metadata,
                    events.c.occurred_at,
                    outbox.c.subject,
                )
                .join(outbox, outbox.c.position == events.c.position)
                .order_by(events.c.position)
                .limit(self.batch_size)
            )
            batch = [(row_to_event(row), row.subject) for row in result]
        if not batch:
            OUTBOX_PENDING.set(0)
            return 0
        published: list[int] = []
        try:
            for event, subject in batch:
                await self._publish(event, subject)
                published.append(event.position)
        finally:
            await self._forget(published)
        EVENTS_PUBLISHED.inc(len(published))
        return len(published)

    async def _publish(self, event: RecordedEvent, subject: str) -> None:
        await self.nats.jetstream.publish(
            subject,
            envelope_json(event),
            timeout=self.publish_timeout,
            headers=headers_for(event),
        )

    async def _forget(self, positions: Sequence[int]) -> None:
        if not positions:
            return
        async with self.database.transaction() as conn:
            await conn.execute(outbox.delete().where(outbox.c.position.in_(positions)))

    async def republish(self, *, after: int = 0, until: int | None = None) -> int:
        """Re-drive a range of the store to JetStream (events with after < position ≤ until).

        JetStream drops what it still remembers by id; consumers drop the rest by their inbox.
        """
        count = 0
        while True:
            async with self.database.transaction(write=False) as conn:
                batch = await read_all(conn, after=after, limit=self.batch_size)
            batch = [e for e in batch if until is None or e.position <= until]
            if not batch:
                return count
            for event in batch:
                await self._publish(event, event.metadata["subject"])
                count += 1
            after = batch[-1].position
