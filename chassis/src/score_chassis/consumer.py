"""The idempotent consumer: a durable JetStream pull consumer whose handler writes its view
and an inbox row `(consumer, event_id)` in one transaction, acknowledging after the commit.

A redelivered or duplicated event finds its inbox row and changes nothing: "exactly once in
effect". A message that cannot be parsed, or whose handler fails `max_deliver` times, becomes a
dead-letter record with the error, is terminated, and the consumer carries on.

A subscription that names its view and knows how to clear it can be rebuilt (`rebuild.py`):
the view and the consumer's inbox rows are dropped together and the stream read again from its
start. A consumer that starts with no inbox row while its stream holds events reads the stream
from its start too, and marks its view as being rebuilt meanwhile (`view.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
import structlog
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import dead_letters
from score_chassis.database import Database
from score_chassis.dead_letters import DeadLetter, NotRetriable
from score_chassis.jetstream import NatsConnection, ensure_stream
from score_chassis.logs import get_logger
from score_chassis.metrics import CONSUMER_LAG, EVENTS_CONSUMED
from score_chassis.pull import ConsumerGone, Pull
from score_chassis.tables import inbox, rebuilds
from score_chassis.tasks import cancel_until_done
from score_chassis.view import View, mark, moved
from score_contracts.envelope import Envelope, UnknownEventType, parse_envelope
from score_contracts.events import Event
from score_contracts.subjects import StreamSpec

log = get_logger(__name__)

Handler = Callable[[AsyncConnection, Envelope[Event]], Awaitable[None]]
ClearView = Callable[[AsyncConnection], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class BatchHandler:
    """A handler that applies the new events of a batch at once, with a few statements for all
    of them rather than some for each (a projection catching up reads thousands a second).

    Called with one event, it applies that one: it is a `Handler` too.
    """

    apply: Callable[[AsyncConnection, Sequence[Envelope[Event]]], Awaitable[None]]

    async def __call__(self, conn: AsyncConnection, envelope: Envelope[Event]) -> None:
        await self.apply(conn, [envelope])


@dataclass(frozen=True, slots=True)
class Beside:
    """How a view is rebuilt without being cleared: tables of the same shape beside it, filled
    by consumers of their own, whose content replaces the view's when they have caught up."""

    handler: Handler
    """Writes what the view's handler writes, into the tables beside it."""
    clear: ClearView
    """Empties the tables beside the view."""
    switch: ClearView
    """Replaces the view's content with that of the tables beside it, in the caller's
    transaction (so that a reader sees one or the other)."""


@dataclass(frozen=True, slots=True)
class Subscription:
    """What a service consumes: a durable name (service and purpose), a stream, a handler."""

    durable: str
    stream: StreamSpec
    handler: Handler
    filter_subjects: tuple[str, ...] = ()
    clear: ClearView | None = None
    """Deletes everything `handler` wrote, so that the view can be rebuilt from the stream."""
    view: View | None = None
    """The view `handler` builds, if it can be rebuilt (then `clear` is required)."""
    beside: Beside | None = None
    """How the view is rebuilt beside the one served, if it can be: its reads then go on
    answering, from the whole view, while it is rebuilt."""

    def __post_init__(self) -> None:
        if self.view is not None and self.clear is None:
            raise ValueError(f"{self.durable}: a view without a clear function cannot be rebuilt")
        if self.beside is not None and self.view is None:
            raise ValueError(f"{self.durable}: only a view can be built beside itself")

    def besides(self) -> Subscription:
        """The subscription of the consumer that builds this one's view beside it."""
        assert self.beside is not None
        return Subscription(
            durable=f"{self.durable}-beside",
            stream=self.stream,
            handler=self.beside.handler,
            filter_subjects=self.filter_subjects,
        )


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a consumer has come through its stream."""

    processed: int
    """The stream sequence up to which every message is handled and acknowledged."""
    last_sequence: int
    """The stream's last sequence now."""
    pending: int
    """Messages not yet delivered or not yet acknowledged."""
    done: bool
    """Everything in the stream is handled (the durable exists and nothing is pending)."""


class IdempotentConsumer:
    def __init__(
        self,
        subscription: Subscription,
        database: Database,
        nats: NatsConnection,
        *,
        batch_size: int = 200,
        max_deliver: int = 5,
        ack_wait: float = 30.0,
        fetch_timeout: float = 1.0,
        outage_retry: float = 5.0,
        replicas: int = 1,
    ) -> None:
        self.subscription = subscription
        self.database = database
        self.nats = nats
        self.batch_size = batch_size
        self.max_deliver = max_deliver
        self.ack_wait = ack_wait
        self.fetch_timeout = fetch_timeout
        self.outage_retry = outage_retry
        self.replicas = replicas
        self.lag: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.reading = False
        """Whether the consumer has checked its durable's position (see
        `_restart_if_the_view_was_cleared`) and reads from it."""
        self.on_rebuilding: Callable[[], None] | None = None
        """Called once the consumer, finding it reads its stream from the start into an empty
        view, has marked the view as being rebuilt."""
        self.on_handled: Callable[[], None] | None = None
        """Called after a transaction that handled new events has committed (a watch of the
        view looks at it at once, rather than at its next poll)."""

    @property
    def name(self) -> str:
        return self.subscription.durable

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"consumer-{self.name}")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            # A request nats-py makes while the consumer sets itself up can swallow one
            # cancellation, and the task would then read on for ever.
            await cancel_until_done(task)
        self.reading = False

    async def restart(self) -> None:
        """Stop and start again: the start checks the durable's position once more."""
        await self.stop()
        self.start()

    async def _run(self) -> None:
        # A task copies the context it is started in: one (re)started by a request (a rebuild)
        # must not log that request's ids for the rest of its life.
        structlog.contextvars.unbind_contextvars("correlation_id", "causation_id", "event_id")
        delay = 0.2
        while True:
            try:
                await self.nats.ready.wait()
                await self._consume()
            except (NatsError, JetStreamError, ConnectionError, TimeoutError) as error:
                log.warning("consumer.interrupted", consumer=self.name, error=repr(error))
            except Exception as error:
                # The database, most likely: never give up. The type only: a database
                # error's text can quote the payload. Unacknowledged messages come again.
                log.warning("consumer.interrupted", consumer=self.name, error=type(error).__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _consume(self) -> None:
        js = self.nats.jetstream
        spec = self.subscription.stream
        # Producers create their streams; a consumer that starts first creates the same one.
        await ensure_stream(js, spec, replicas=self.replicas, update_existing=False)
        await self._restart_if_the_view_was_cleared()
        config = ConsumerConfig(
            durable_name=self.name,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            # Unlimited on the server: JetStream would silently stop delivering a message
            # after max_deliver attempts, counting redeliveries after a crash or a database
            # outage too. The limit is kept here, for handler failures only, with a record.
            max_deliver=-1,
            max_ack_pending=max(1000, self.batch_size * 4),
            filter_subjects=list(self.subscription.filter_subjects) or None,
        )
        await js.add_consumer(spec.name, config)
        pull = Pull(self.nats.client, spec.name, self.name, batch=self.batch_size)
        await pull.start()
        self.reading = True
        log.info("consumer.started", consumer=self.name, stream=spec.name)
        try:
            while True:
                try:
                    messages = await pull.take(within=self.fetch_timeout)
                except TimeoutError:
                    await self._measure_lag()
                    continue
                except ConsumerGone:
                    raise ConnectionError("consumer vanished") from None
                await self.handle_batch(messages)
        finally:
            self.reading = False
            with contextlib.suppress(Exception):
                await pull.stop()

    async def _restart_if_the_view_was_cleared(self) -> None:
        """Delete the durable if its position is not true of the view, so that it is made
        again from its stream's first event. This is the one place a durable is deleted for
        a rebuild: the rebuild and its watch only stop and start the consumer.

        The durable's position is only true of the database that handled those messages:
        with no inbox row left (a fresh database) it would skip them, and a rebuild's row
        not yet `restarted` says the view was cleared since. (A database restored from a
        backup keeps inbox rows and is not noticed: operations.md. A stream whose every
        message so far was dead-lettered or of an unknown type also leaves no inbox row;
        reading it again is harmless.)
        """
        js = self.nats.jetstream
        stream = self.subscription.stream.name
        try:
            info = await js.consumer_info(stream, self.name)
            ahead = bool(info.ack_floor and info.ack_floor.stream_seq)
        except NotFoundError:
            ahead = False
        async with self.database.transaction(write=False) as conn:
            remembered = await conn.execute(
                sa.select(inbox.c.event_id).where(inbox.c.consumer == self.name).limit(1)
            )
            handled = remembered.first() is not None
            marked = await conn.execute(
                sa.select(rebuilds.c.restarted).where(rebuilds.c.consumer == self.name)
            )
            asked = marked.scalar() is False
        if asked:  # a rebuild cleared the view and wrote its row
            log.info("consumer.restarting_for_a_rebuild", consumer=self.name)
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(stream, self.name)
            async with self.database.transaction() as conn:
                await conn.execute(
                    rebuilds.update().where(rebuilds.c.consumer == self.name).values(restarted=True)
                )
            return
        if handled:
            return
        if ahead:
            log.warning("consumer.restarting_from_the_start", consumer=self.name)
            await js.delete_consumer(stream, self.name)
        # From here the durable reads its stream from the first event into an empty view: the
        # view is being rebuilt until it has caught up with what the stream holds now.
        view = self.subscription.view
        last = int((await js.stream_info(stream)).state.last_seq or 0)
        if view is not None and last:
            async with self.database.transaction() as conn:
                await mark(
                    conn,
                    view,
                    {self.name: last},
                    restarted=True,
                    started_at=dt.datetime.now(dt.UTC),
                )
            if self.on_rebuilding is not None:
                self.on_rebuilding()

    async def progress(self) -> Progress:
        """Where the consumer stands in its stream (NATS must be reachable)."""
        js = self.nats.jetstream
        stream = await js.stream_info(self.subscription.stream.name)
        last = int(stream.state.last_seq or 0)
        try:
            info = await js.consumer_info(self.subscription.stream.name, self.name)
        except NotFoundError:  # being made again after a rebuild
            return Progress(processed=0, last_sequence=last, pending=last, done=False)
        pending = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
        processed = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
        return Progress(processed=processed, last_sequence=last, pending=pending, done=not pending)

    async def _measure_lag(self) -> None:
        with contextlib.suppress(Exception):
            info = await self.nats.jetstream.consumer_info(self.subscription.stream.name, self.name)
            self.lag = int(info.num_pending or 0) + int(info.num_ack_pending or 0)
            CONSUMER_LAG.labels(self.name).set(self.lag)

    async def handle_batch(self, messages: Sequence[Msg]) -> None:
        """Handle a fetched batch: parse, then apply all in one transaction, then ack."""
        parsed: list[tuple[Msg, Envelope[Event]]] = []
        for msg in messages:
            try:
                envelope = parse_envelope(msg.data)
            except UnknownEventType as error:
                # A type this version of the contracts does not know (a newer major, an event
                # added since): kept where an operator sees it, to retry once upgraded (ADR 027).
                await self._dead_letter(msg, f"{error}: not in this service's contracts")
                continue
            except ValueError as error:
                await self._dead_letter(msg, f"unparseable: {error}")
                continue
            if (foreign := _foreign(msg.subject, envelope, self.subscription.stream)) is not None:
                await self._dead_letter(msg, f"wrong producer: {foreign}", event_id=envelope.id)
                continue
            parsed.append((msg, envelope))
        if not parsed:
            return
        try:
            async with self.database.transaction() as conn:
                handled = await self._apply(conn, [envelope for _msg, envelope in parsed])
        except Exception:  # one bad event must not hold back the others: isolate it
            log.warning("consumer.batch_failed", consumer=self.name, size=len(parsed))
            for msg, envelope in parsed:
                await self._handle_one(msg, envelope)
            return
        self._handled(handled)
        for msg, _envelope in parsed:
            await msg.ack()
        EVENTS_CONSUMED.labels(self.name, "handled").inc(handled)

    async def _handle_one(self, msg: Msg, envelope: Envelope[Event]) -> None:
        try:
            async with self.database.transaction() as conn:
                handled = await self._apply(conn, [envelope])
        except Exception as error:
            deliveries = msg.metadata.num_delivered or 1
            log.warning(
                "consumer.handler_failed",
                consumer=self.name,
                event_id=envelope.id,
                deliveries=deliveries,
                error=type(error).__name__,
            )
            if _is_outage(error):
                # Not the event's fault: it must not end as a dead letter. Try again later.
                await msg.nak(delay=self.outage_retry)
            elif deliveries >= self.max_deliver:
                await self._dead_letter(
                    msg, f"handler failed {deliveries} times: {error!r}", event_id=envelope.id
                )
            else:
                await msg.nak(delay=min(2.0**deliveries, 30.0))
            return
        self._handled(handled)
        await msg.ack()
        EVENTS_CONSUMED.labels(self.name, "handled").inc(handled)

    def _handled(self, count: int) -> None:
        if count and self.on_handled is not None:
            self.on_handled()

    async def _apply(self, conn: AsyncConnection, envelopes: Sequence[Envelope[Event]]) -> int:
        """Handle the events not yet in the inbox, and add them to it: one transaction.
        Returns how many were new.

        The inbox is read and written once per batch rather than per event: on SQLite each
        statement is a round trip to the database thread, and these are half of them. A
        `BatchHandler` gets the new events together, for the same reason.
        """
        ids = [envelope.id for envelope in envelopes]
        seen = set(
            (
                await conn.execute(
                    sa.select(inbox.c.event_id).where(
                        inbox.c.consumer == self.name, inbox.c.event_id.in_(ids)
                    )
                )
            ).scalars()
        )
        new: list[Envelope[Event]] = []
        for envelope in envelopes:
            if envelope.id in seen:  # handled before, or earlier in this very batch
                EVENTS_CONSUMED.labels(self.name, "duplicate").inc()
                continue
            seen.add(envelope.id)
            new.append(envelope)
        if not new:
            return 0
        handler = self.subscription.handler
        if isinstance(handler, BatchHandler):
            await handler.apply(conn, new)
        else:
            for envelope in new:
                with bound_event(envelope):
                    await handler(conn, envelope)
        now = dt.datetime.now(dt.UTC)
        await conn.execute(
            inbox.insert(),
            [{"consumer": self.name, "event_id": e.id, "processed_at": now} for e in new],
        )
        if self.subscription.view is not None:
            await moved(conn, self.subscription.view, [self.name])
        return len(new)

    async def _dead_letter(self, msg: Msg, error: str, *, event_id: str | None = None) -> None:
        metadata = msg.metadata
        event_id = event_id or (msg.headers or {}).get("Nats-Msg-Id")
        async with self.database.transaction() as conn:
            await dead_letters.record(
                conn,
                consumer=self.name,
                subject=msg.subject,
                stream_sequence=metadata.sequence.stream if metadata.sequence else None,
                event_id=event_id,
                deliveries=metadata.num_delivered or 1,
                error=error,
                payload=msg.data,
            )
        await msg.term()
        # The error text can quote the payload, which holds personal data: keep it in the
        # dead-letter record, out of the logs.
        log.error("consumer.dead_lettered", consumer=self.name, event_id=event_id)

    async def retry_dead_letter(self, conn: AsyncConnection, letter: DeadLetter) -> None:
        """The `Retrier` of this consumer's dead letters: apply the stored event as a delivery
        would, through the inbox, in the retry's transaction. An event handled meanwhile (a
        republish delivered it again) is in the inbox: applied nothing, the letter goes."""
        try:
            envelope = parse_envelope(letter.payload)
        except ValueError as error:  # UnknownEventType too
            said = " ".join(str(error).split())[:300]
            raise NotRetriable(
                f"dead letter {letter.id} holds no event {self.name} can read ({said}): a retry "
                "would fail the same way; discard it",
                rule="unreadable-payload",
            ) from None
        if (foreign := _foreign(letter.subject, envelope, self.subscription.stream)) is not None:
            raise NotRetriable(
                f"dead letter {letter.id} is not an event of {self.subscription.stream.name}'s "
                f"producer ({foreign}): discard it",
                rule="wrong-producer",
            )
        handled = await self._apply(conn, [envelope])
        EVENTS_CONSUMED.labels(self.name, "handled").inc(handled)


def _foreign(subject: str, envelope: Envelope[Event], stream: StreamSpec) -> str | None:
    """Why `envelope`, read from `stream` on `subject`, is not an event of the stream's producer,
    or None when it is one.

    A stream holds its own context's events only, each on the subject its type names
    (`score.<country>.<region>.<context>.<event_name>.v<major>`), from the source
    `/score/<country>/<context>`. The broker's permissions make anything else impossible for a
    service's user; a consumer still does not take another context's event for its producer's
    (an open broker, a leaked password, a mis-routed republish) and count it a second time.
    """
    event = envelope.data
    if event.context != stream.context:
        return f"a {event.context} event on {stream.name}"
    tokens = subject.split(".")
    if len(tokens) != 6 or tokens[3:] != [event.context, event.event_name, f"v{event.major}"]:
        return f"{envelope.type} on the subject {subject}"
    if envelope.source != f"/score/{tokens[1]}/{stream.context}":
        return f"source {envelope.source} on the subject {subject}"
    return None


def _is_outage(error: Exception) -> bool:
    """Whether the database (not the event) failed: a lost or refused connection, a timeout."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    return isinstance(error, OperationalError | InterfaceError | SQLAlchemyTimeoutError | OSError)


@contextlib.contextmanager
def bound_event(envelope: Envelope[Event]) -> Iterator[None]:
    """Bind the event's ids to every log line written while handling it."""
    with structlog.contextvars.bound_contextvars(
        event_id=envelope.id,
        correlation_id=envelope.correlationid,
        causation_id=envelope.causationid,
    ):
        yield
