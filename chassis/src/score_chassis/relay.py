"""The outbox relay: publishes appended events to JetStream, in order, each once.

The outbox is a set of pending rows, not a cursor over positions. A cursor ("publish
everything after position N") skips events on PostgreSQL, where a transaction that took
position 10 can commit after one that took 11: the cursor passes 11 before 10 is visible.
A pending set cannot skip: a late commit is simply still pending at the next pass.

An event leaves the outbox only after JetStream acknowledged it, so a crash between the ack and
the delete leaves published events pending. JetStream drops a second copy by its `Nats-Msg-Id`
only within the stream's duplicate window; a relay that restarts later must learn what the
stream holds instead of counting on it (ADR 010). It keeps a checkpoint per stream, the
sequence up to which every message of the stream is known to the outbox, moved in the
transaction of the outbox delete. Whenever it cannot be sure of a stream (it has just started
or become the leader, a pass failed, a message not its own came between its publishes, or half
the duplicate window went by since it last knew), it reads the ids of the stream's messages after
the checkpoint and forgets the pending events already there before publishing to it again. It
reads the stream's contents, not store positions, so it cannot skip an event never published.
In the steady state this costs one UPDATE per batch and nothing on NATS.

Events are published in position order on one connection, many awaiting their acks at once.
NATS delivers one connection's messages in order and JetStream stores them in the order it
gets them, but a message can be lost or refused while the ones after it are stored (a
connection lost mid-batch, whose later publishes nats-py sends after reconnecting; a storage
error): its retry would land after a later event of its aggregate. So each publish of a pass
but the first to a stream says which event must be the stream's last (`Nats-Expected-Last-Msg-Id`,
the previous one sent to it): JetStream refuses it otherwise, and every later one with it. What
the stream holds of a pass is therefore always a prefix of what the pass sent to it, and the
events of one aggregate reach the stream in version order.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, Header, PubAck
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NoStreamResponseError, NotFoundError

from score_chassis.database import Database
from score_chassis.jetstream import NatsConnection
from score_chassis.logs import get_logger
from score_chassis.metrics import EVENTS_PUBLISHED, OUTBOX_PENDING
from score_chassis.store import RecordedEvent, read_all, row_to_event
from score_chassis.tables import events, outbox, relay_checkpoints
from score_chassis.tasks import cancel_until_done
from score_chassis.upsert import insert
from score_contracts.envelope import CONTENT_TYPE
from score_contracts.events import BY_TYPE

log = get_logger(__name__)

# One relay per database: on PostgreSQL the replicas of a service elect one with this lock.
RELAY_LOCK_KEY = 0x5C0BE_0001

# JetStream's duplicate window when a stream's configuration leaves it to the server.
_DEFAULT_DUPLICATE_WINDOW = 120.0
# Messages read per fetch, and event ids per DELETE, when the relay reads a stream.
_READ_CHUNK = 500
# How far the clock of a service may be from that of NATS, for `republish`'s reading.
_CLOCK_SKEW = dt.timedelta(minutes=15)
# Made once: `json.dumps` with options makes an encoder per call, a cost per event published.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


LOCAL_BASE_URL = "http://127.0.0.1:8100"
"""The producer's address in `dataschema` when none is given: a service's own default."""


def envelope_json(event: RecordedEvent, base_url: str = LOCAL_BASE_URL) -> bytes:
    """The CloudEvents structured-mode body of a stored event, published by the service at
    `base_url` (whose `/schemas/…` the `dataschema` names: ADR 023)."""
    model = BY_TYPE.get(event.type)
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": event.event_id,
        "source": event.metadata["source"],
        "type": event.type,
        "subject": event.stream_id,
        "time": event.occurred_at.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "dataschema": model.dataschema(base_url) if model else None,
        "streamversion": event.version,
        "correlationid": event.metadata.get("correlation_id"),
        "causationid": event.metadata.get("causation_id"),
        # The public streams never carry personal data (ADR 011).
        "data": model.public_data(event.data) if model else event.data,
    }
    return _COMPACT_JSON.encode(body).encode()


def headers_for(event: RecordedEvent) -> dict[str, str]:
    return {"Nats-Msg-Id": event.event_id, "Content-Type": CONTENT_TYPE}


def checkpoint_after(checkpoint: int, acks: Iterable[PubAck]) -> tuple[int, bool]:
    """Where a stream's checkpoint moves after a batch's acks, and whether it reached them all.

    The checkpoint moves over the sequences the acks name one by one: each is a message holding
    an event of the batch (a copy JetStream dropped names the message it kept). A gap is a
    message someone else put there, which may hold an event still pending: the checkpoint
    stops before it, and the relay reads the stream before it trusts it again. A new message
    at or below the checkpoint means the stream was made again and counts from 1.
    """
    acks = list(acks)
    if any(not ack.duplicate and ack.seq <= checkpoint for ack in acks):
        return checkpoint, False
    sequences = {ack.seq for ack in acks}
    reached = checkpoint
    while reached + 1 in sequences:
        reached += 1
    return reached, reached >= max(sequences, default=checkpoint)


def _json(value: Any) -> Any:
    """A JSON column as the driver gives it: text from SQLite, already decoded by asyncpg."""
    return json.loads(value) if isinstance(value, str) else value


def _subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    tokens = subject.split(".")
    for index, token in enumerate(pattern.split(".")):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or token not in ("*", tokens[index]):
            return False
    return len(tokens) == len(pattern.split("."))


@dataclass(slots=True)
class _Stream:
    """What the relay learnt of a stream when it last read it."""

    name: str
    subjects: tuple[str, ...]
    checkpoint: int
    trust_seconds: float
    """Half the duplicate window: another publisher's copy is dropped for twice as long."""
    trusted_until: float = 0.0
    """A monotonic time; the relay reads the stream again before publishing to it after it."""

    def takes(self, subject: str) -> bool:
        return any(_subject_matches(pattern, subject) for pattern in self.subjects)


async def _read_ids(
    js: JetStreamContext,
    stream: str,
    *,
    start: int | dt.datetime,
    until: int,
    on_chunk: Callable[[list[str], int], Awaitable[None]],
    fetch_seconds: float,
) -> None:
    """Read the `Nats-Msg-Id`s of `stream`'s messages from `start` (a sequence or a time) to
    sequence `until`, and hand them over chunk by chunk with the last sequence read.

    An ephemeral consumer that delivers headers only and wants no acks: a stream is read at
    the cost of its headers, and the server forgets the consumer if the reader dies.
    """
    name = f"relay-read-{uuid.uuid4().hex}"
    config = ConsumerConfig(
        name=name,
        ack_policy=AckPolicy.NONE,
        headers_only=True,
        inactive_threshold=60.0,
        mem_storage=True,
        num_replicas=1,
    )
    if isinstance(start, int):
        config.deliver_policy, config.opt_start_seq = DeliverPolicy.BY_START_SEQUENCE, start
    else:
        config.deliver_policy, config.opt_start_time = DeliverPolicy.BY_START_TIME, start
    info = await js.add_consumer(stream, config)
    try:
        if not info.num_pending:
            return
        reader = await js.pull_subscribe_bind(consumer=name, stream=stream)
        try:
            delivered = 0
            while True:
                try:
                    messages = await reader.fetch(_READ_CHUNK, timeout=fetch_seconds)
                except NatsTimeoutError:
                    if not (await reader.consumer_info()).num_pending:
                        return  # the last messages were deleted while we read
                    raise
                ids: list[str] = []
                sequence, done = 0, False
                for msg in messages:
                    metadata = msg.metadata
                    delivered += 1
                    if metadata.sequence.consumer != delivered:
                        # Nothing is redelivered without acks: a message went missing.
                        raise ConnectionError(f"a message of {stream} was lost in reading it")
                    if metadata.sequence.stream > until:
                        done = True
                        break
                    sequence = metadata.sequence.stream
                    if msg_id := (msg.headers or {}).get("Nats-Msg-Id"):
                        ids.append(msg_id)
                    if sequence >= until or not metadata.num_pending:
                        done = True
                        break
                if sequence:
                    await on_chunk(ids, sequence)
                if done:
                    return
        finally:
            with contextlib.suppress(Exception):
                await reader.unsubscribe()
    finally:
        with contextlib.suppress(Exception):
            await js.delete_consumer(stream, name)


class OutboxRelay:
    def __init__(
        self,
        database: Database,
        nats: NatsConnection,
        *,
        batch_size: int = 500,
        poll_seconds: float = 1.0,
        publish_timeout: float = 5.0,
        base_url: str = LOCAL_BASE_URL,
        provision: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.database = database
        self.provision = provision
        """Makes the stream again when no stream takes what the relay has to publish: a broker
        that came back without its JetStream data, or a stream deleted. Without it, the
        events wait in the outbox until someone else makes the stream."""
        self.base_url = base_url
        self.nats = nats
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.publish_timeout = publish_timeout
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._streams: dict[str, _Stream] = {}

    def notify(self) -> None:
        """Something was appended: publish it now rather than at the next poll."""
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        # The flag as well as the cancellation: a cancellation that a library turns into an
        # error it raises (a publish's timeout, say) is caught as that error, and the loop
        # would go on for ever; the flag ends it at its next turn.
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await cancel_until_done(self._task)

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
        while not self._stopping:
            try:
                async with self._leadership():
                    await self._relay()
            except Exception as error:
                # The type only: a database error's text can quote event data.
                log.warning("relay.interrupted", error=type(error).__name__)
                await asyncio.sleep(self.poll_seconds)

    async def _relay(self) -> None:
        # A new leader knows nothing of what the one before it published: it reads the streams.
        self._streams.clear()
        while not self._stopping:
            await self.nats.ready.wait()
            try:
                published = await self.publish_pending()
            except NoStreamResponseError:
                if not await self._provisioned():
                    await self._sleep_or_wakeup(self.poll_seconds)
                continue
            except (NatsError, JetStreamError, TimeoutError, ConnectionError) as error:
                log.warning("relay.publish_failed", error=str(error) or type(error).__name__)
                await self._sleep_or_wakeup(self.poll_seconds)
                continue
            if published < self.batch_size:
                await self._sleep_or_wakeup(self.poll_seconds)

    async def _provisioned(self) -> bool:
        """Whether the stream could be made again, for the next pass to publish to."""
        log.warning("relay.no_stream", provision=self.provision is not None)
        if self.provision is None:
            return False
        try:
            await self.provision()
        except (NatsError, JetStreamError, TimeoutError, ConnectionError) as error:
            log.warning("relay.provision_failed", error=str(error) or type(error).__name__)
            return False
        return True

    @contextlib.asynccontextmanager
    async def _leadership(self) -> Any:
        if self.database.is_sqlite:
            yield
            return
        # A session-level advisory lock, held for the relay's life on its own connection.
        async with self.database.engine.connect() as conn:
            while not (
                await conn.execute(
                    sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": RELAY_LOCK_KEY}
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
                        sa.text("SELECT pg_advisory_unlock(:k)"), {"k": RELAY_LOCK_KEY}
                    )
                    await conn.commit()
                except Exception:  # the connection is broken: make sure it is not reused
                    await conn.invalidate()

    async def _sleep_or_wakeup(self, seconds: float) -> None:
        # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that comes as the
        # event is set, and `stop` then waits for ever.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wakeup.wait()
        self._wakeup.clear()

    async def publish_pending(self) -> int:
        """Publish one batch of pending events; returns how many were published.

        A stream the relay does not trust is read first (`reconcile`), and the pending events
        it already holds are forgotten rather than published again.
        """
        if not self.nats.connected:
            raise ConnectionError("NATS is not connected")
        batch = await self._pending()
        for _ in range(3):  # the batch is read again when reading a stream forgot some of it
            if not batch or not await self._reconcile_streams_of(s for _, s in batch):
                break
            batch = await self._pending()
        if not batch:
            OUTBOX_PENDING.set(0)
            return 0
        started = time.monotonic()
        trusted_until: dict[str, float] = {}
        sent: list[tuple[int, str, asyncio.Future[PubAck]]] = []
        last_sent: dict[str, str] = {}  # by stream, the id of the event this pass sent last
        streams: dict[str, _Stream | None] = {}  # by subject, for this pass
        try:
            for event, subject in batch:
                if subject not in streams:
                    streams[subject] = self._stream_taking(subject)
                stream = streams[subject]
                if stream is None:
                    if sent:
                        break
                    raise NoStreamResponseError  # no stream takes the subject
                if stream.name not in trusted_until:
                    trusted_until[stream.name] = stream.trusted_until
                    stream.trusted_until = 0.0  # until this pass has its acks and its delete
                if time.monotonic() >= trusted_until[stream.name]:
                    break  # the trust ran out: the rest waits until the stream is read
                ack = await self._send(event, subject, after=last_sent.get(stream.name))
                sent.append((event.position, stream.name, ack))
                last_sent[stream.name] = event.event_id
        finally:
            published, failure = await self._acknowledged(sent)
            whole = await self._forget(published)
        EVENTS_PUBLISHED.inc(len(published))
        if failure is not None:
            raise failure  # its streams stay untrusted: each is read before it is sent to again
        for name in whole & trusted_until.keys():
            self._streams[name].trusted_until = started + self._streams[name].trust_seconds
        return len(published)

    async def _pending(self) -> list[tuple[RecordedEvent, str]]:
        async with self.database.transaction(write=False) as conn:
            result = await conn.execute(
                sa.select(
                    events.c.position,
                    events.c.event_id,
                    events.c.stream_id,
                    events.c.version,
                    events.c.type,
                    # Decoded below: SQLAlchemy's decoding of SQLite's JSON text took longer
                    # than anything else the relay does with an event.
                    sa.type_coerce(events.c.data, sa.Text).label("data"),
                    sa.type_coerce(events.c.metadata, sa.Text).label("metadata"),
                    events.c.occurred_at,
                    outbox.c.subject,
                )
                .join(outbox, outbox.c.position == events.c.position)
                # By the outbox's key: ordered by the events' one, SQLite walks the events from
                # the first, published or not, and a backlog takes time quadratic in its size.
                .order_by(outbox.c.position)
                .limit(self.batch_size)
            )
            return [
                (
                    replace(row_to_event(row), data=_json(row.data), metadata=_json(row.metadata)),
                    row.subject,
                )
                for row in result
            ]

    async def _publish(self, event: RecordedEvent, subject: str) -> PubAck:
        ack: PubAck = await self.nats.jetstream.publish(
            subject,
            envelope_json(event, self.base_url),
            timeout=self.publish_timeout,
            headers=headers_for(event),
        )
        return ack

    async def _send(
        self, event: RecordedEvent, subject: str, *, after: str | None
    ) -> asyncio.Future[PubAck]:
        """Publish without waiting for the ack; `after` is the event the stream must end with."""
        headers = headers_for(event)
        if after is not None:
            headers[Header.EXPECTED_LAST_MSG_ID.value] = after
        return await self.nats.jetstream.publish_async(
            subject, envelope_json(event, self.base_url), headers=headers
        )

    async def _acknowledged(
        self, sent: Sequence[tuple[int, str, asyncio.Future[PubAck]]]
    ) -> tuple[list[tuple[int, str, PubAck]], BaseException | None]:
        """Wait for the acks of a pass: those that came, and the first failure if any.

        An ack that does not come within `publish_timeout` is a failure: its event stays
        pending, though it may be stored, and the stream is read before it is published again.
        """
        if not sent:
            return [], None
        _, late = await asyncio.wait([ack for _, _, ack in sent], timeout=self.publish_timeout)
        for ack in late:
            ack.cancel()
        acked: list[tuple[int, str, PubAck]] = []
        failure: BaseException | None = None
        for position, name, ack in sent:
            if ack.cancelled():
                failure = failure or NatsTimeoutError()
            elif (error := ack.exception()) is not None:
                failure = failure or error
            else:
                acked.append((position, name, ack.result()))
        return acked, failure

    async def _forget(self, published: Sequence[tuple[int, str, PubAck]]) -> set[str]:
        """Delete the published rows and move the checkpoints, in one transaction.

        Returns the streams that hold nothing unknown to the outbox up to their checkpoint.
        """
        if not published:
            return set()
        acks: dict[str, list[PubAck]] = {}
        for _position, name, ack in published:
            if ack.stream != name:  # the streams were reconfigured under us: learn them again
                self._streams.clear()
                break
            acks.setdefault(name, []).append(ack)
        moved: dict[str, int] = {}
        whole: set[str] = set()
        for name, stream_acks in acks.items():
            stream = self._streams.get(name)
            if stream is None:
                continue
            checkpoint, reached_all = checkpoint_after(stream.checkpoint, stream_acks)
            if checkpoint != stream.checkpoint:
                moved[name] = checkpoint
            if reached_all:
                whole.add(name)
        async with self.database.transaction() as conn:
            await conn.execute(
                outbox.delete().where(outbox.c.position.in_([p for p, _, _ in published]))
            )
            for name, checkpoint in moved.items():
                await conn.execute(
                    relay_checkpoints.update()
                    .where(relay_checkpoints.c.stream == name)
                    .values(stream_sequence=checkpoint)
                )
        for name, checkpoint in moved.items():
            self._streams[name].checkpoint = checkpoint
        return whole

    def _stream_taking(self, subject: str) -> _Stream | None:
        for stream in self._streams.values():
            if stream.takes(subject):
                return stream
        return None

    async def _find_stream(self, subject: str) -> str | None:
        try:
            name: str = await self.nats.jetstream.find_stream_name_by_subject(subject)
        except NotFoundError:
            return None
        return name

    async def _reconcile_streams_of(self, subjects: Iterable[str]) -> bool:
        """Read every stream these subjects go to that the relay does not trust; returns
        whether that forgot any pending event."""
        forgotten = 0
        for subject in set(subjects):
            stream = self._stream_taking(subject)
            if stream is not None and time.monotonic() < stream.trusted_until:
                continue
            name = stream.name if stream is not None else await self._find_stream(subject)
            if name is None:
                continue  # no stream takes it: its publish will say so
            forgotten += await self.reconcile(name)
        return forgotten > 0

    async def reconcile(self, stream: str) -> int:
        """Learn what `stream` holds beyond the checkpoint: forget the pending events already
        there, move the checkpoint to the stream's end. Returns how many events it forgot.

        The relay then trusts the stream for half its duplicate window: publishing to it only
        moves the checkpoint, unless a message not the relay's own shows between its publishes.
        """
        started = time.monotonic()
        js = self.nats.jetstream
        info = await js.stream_info(stream)
        async with self.database.transaction(write=False) as conn:
            row = (
                await conn.execute(
                    sa.select(relay_checkpoints).where(relay_checkpoints.c.stream == stream)
                )
            ).first()
        state = info.state
        created = info.created.isoformat() if info.created else None
        last = int(state.last_seq or 0)
        start = int(state.first_seq or 0)
        # A checkpoint past the stream's end, or of a stream created at another time, is of a
        # stream that was lost and made again: read this one from its start.
        if row is not None and row.stream_created == created and row.stream_sequence <= last:
            start = max(start, row.stream_sequence + 1)
        forgotten = 0

        async def learn(ids: list[str], sequence: int) -> None:
            nonlocal forgotten
            forgotten += await self._learned(stream, ids, sequence, created)

        if state.messages and start <= last:
            await _read_ids(
                js,
                stream,
                start=start,
                until=last,
                on_chunk=learn,
                fetch_seconds=self.publish_timeout,
            )
        await self._learned(stream, [], last, created)
        window = float(info.config.duplicate_window or _DEFAULT_DUPLICATE_WINDOW)
        self._streams[stream] = _Stream(
            name=stream,
            subjects=tuple(info.config.subjects or ()),
            checkpoint=last,
            trust_seconds=window / 2,
            trusted_until=started + window / 2,
        )
        log.info(
            "relay.reconciled",
            stream=stream,
            read=last - start + 1 if state.messages and start <= last else 0,
            forgotten=forgotten,
            checkpoint=last,
        )
        return forgotten

    async def _learned(
        self, stream: str, event_ids: Sequence[str], sequence: int, created: str | None
    ) -> int:
        """Forget the pending events the stream holds and set its checkpoint, in one transaction."""
        forgotten = 0
        async with self.database.transaction() as conn:
            for offset in range(0, len(event_ids), _READ_CHUNK):
                chunk = event_ids[offset : offset + _READ_CHUNK]
                result = await conn.execute(
                    outbox.delete().where(
                        outbox.c.position.in_(
                            sa.select(events.c.position).where(events.c.event_id.in_(chunk))
                        )
                    )
                )
                forgotten += result.rowcount
            upsert = insert(conn, relay_checkpoints).values(
                stream=stream, stream_sequence=sequence, stream_created=created
            )
            await conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[relay_checkpoints.c.stream],
                    set_={
                        "stream_sequence": upsert.excluded.stream_sequence,
                        "stream_created": upsert.excluded.stream_created,
                    },
                )
            )
        return forgotten

    async def republish(
        self,
        *,
        after: int = 0,
        until: int | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> int:
        """Re-drive a range of the store to JetStream (events with after < position ≤ until).

        Events their stream still holds are not sent again: JetStream would drop a copy within
        its duplicate window but keep one after it. The relay first reads the ids each stream
        holds from the range's earliest event on (less `_CLOCK_SKEW`). Returns how many events
        of the range their streams hold now, sent or found there; consumers drop copies anyway.
        `on_progress` is told that count after each batch (an operator's progress bar).
        """
        earliest = await self._earliest(after, until)
        if earliest is None:
            return 0
        held: list[tuple[_Stream, set[str]]] = []
        count = 0
        while True:
            async with self.database.transaction(write=False) as conn:
                batch = await read_all(conn, after=after, limit=self.batch_size)
            batch = [e for e in batch if until is None or e.position <= until]
            if not batch:
                return count
            for event in batch:
                subject = event.metadata["subject"]
                ids = next((ids for s, ids in held if s.takes(subject)), None)
                if ids is None:
                    ids = await self._held_since(subject, earliest - _CLOCK_SKEW, held)
                if ids is None or event.event_id not in ids:
                    await self._publish(event, subject)
                count += 1
            after = batch[-1].position
            if on_progress is not None:
                on_progress(count)

    async def _earliest(self, after: int, until: int | None) -> dt.datetime | None:
        query = sa.select(sa.func.min(events.c.occurred_at)).where(events.c.position > after)
        if until is not None:
            query = query.where(events.c.position <= until)
        async with self.database.transaction(write=False) as conn:
            earliest: dt.datetime | None = (await conn.execute(query)).scalar_one()
        if earliest is not None and earliest.tzinfo is None:  # SQLite keeps no zone
            earliest = earliest.replace(tzinfo=dt.UTC)
        return earliest

    async def _held_since(
        self, subject: str, since: dt.datetime, held: list[tuple[_Stream, set[str]]]
    ) -> set[str] | None:
        """The ids the stream of `subject` holds since `since`, remembered in `held`."""
        name = await self._find_stream(subject)
        if name is None:
            return None  # no stream takes it: the publish will say so
        js = self.nats.jetstream
        info = await js.stream_info(name)
        ids: set[str] = set()

        async def collect(chunk: list[str], _sequence: int) -> None:
            ids.update(chunk)

        if info.state.messages:
            await _read_ids(
                js,
                name,
                start=since,
                until=int(info.state.last_seq),
                on_chunk=collect,
                fetch_seconds=self.publish_timeout,
            )
        stream = _Stream(name, tuple(info.config.subjects or ()), 0, 0.0)
        held.append((stream, ids))
        log.info("relay.republish_read", stream=name, held=len(ids))
        return ids
