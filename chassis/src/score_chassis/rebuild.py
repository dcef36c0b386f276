"""Rebuilding a view from the streams that feed it: work the runtime does in the background, so
that the request that asks for it answers at once.

A rebuild, once asked for:

1. reads the last sequence of each stream that feeds the view (failing here, while NATS is
   away, leaves everything as it was: the rebuild *failed* and can be asked for again);
2. stops the view's consumers and, in one transaction, clears the view, deletes their inbox
   rows and writes a row per consumer in `rebuilds` (see `view.py`): from this commit on, the
   view's reads answer 503;
3. deletes each durable JetStream consumer, so that it is made again from its stream's first
   event, and starts the consumers again.

A watch, one per runtime, then follows every rebuild under way, whoever started it: it finishes
step 3 for consumers whose durable was never deleted (NATS lost half-way, the process stopped),
records how far each consumer has read, and deletes the view's rows once every consumer has
caught up with the sequence its stream had at the start. A process started half-way through
finds the rows and carries on; so does another replica.

One rebuild of a view at a time: asking while one is under way answers the running one.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
import structlog
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from nats.js.errors import NotFoundError

from score_chassis.consumer import IdempotentConsumer
from score_chassis.database import Database
from score_chassis.logs import get_logger
from score_chassis.tables import inbox, rebuilds
from score_chassis.view import UnderWay, View, aware, mark, moved, under_way

log = get_logger(__name__)

NATS_ERRORS = (NatsError, JetStreamError, ConnectionError, TimeoutError)

State = Literal["rebuilding", "failed", "built"]


@dataclass(frozen=True, slots=True)
class Report:
    """Where a view's rebuild stands, for the progress endpoint."""

    view: View
    state: State
    """`rebuilding` from the request until every consumer has caught up; `failed` if the last
    rebuild could not start (nothing was cleared); `built` otherwise."""
    consumers: tuple[str, ...]
    streams: tuple[str, ...]
    processed: int | None
    last_sequence: int | None
    pending: int | None
    target: int | None
    started_at: dt.datetime | None
    error: str | None


def describe(error: BaseException) -> str:
    """An error of the background work, for operators: its type, and NATS's own words."""
    if isinstance(error, NATS_ERRORS):
        said = str(error).strip()
        return f"NATS is not reachable ({type(error).__name__}{': ' + said if said else ''})"
    # The type only: a database error's text can quote the view's data.
    return f"{type(error).__name__}"


class Rebuilds:
    """The rebuilds of a service's views (those its subscriptions name)."""

    def __init__(
        self,
        database: Database,
        consumers: Sequence[IdempotentConsumer],
        *,
        poll_seconds: float = 0.25,
        idle_poll_seconds: float = 5.0,
    ) -> None:
        self.database = database
        self.views: dict[str, View] = {}
        self._consumers: dict[str, list[IdempotentConsumer]] = {}
        self._wake = asyncio.Event()
        for consumer in consumers:
            view = consumer.subscription.view
            if view is not None:
                self.views.setdefault(view.name, view)
                self._consumers.setdefault(view.name, []).append(consumer)
                # A consumer that marks its view itself (a fresh or restored database): watch it.
                consumer.on_rebuilding = self._wake.set
        self.poll_seconds = poll_seconds
        self.idle_poll_seconds = idle_poll_seconds
        self._starts: dict[str, asyncio.Task[None]] = {}
        self._started_at: dict[str, dt.datetime] = {}
        self._failed: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self._watch: asyncio.Task[None] | None = None

    def consumers_of(self, view: View) -> list[IdempotentConsumer]:
        return self._consumers[view.name]

    def start(self) -> None:
        """Watch the rebuilds under way, including those left by an earlier process."""
        if self.views:
            self._watch = asyncio.create_task(self._watching(), name="rebuild-watch")

    async def stop(self) -> None:
        tasks = [*self._starts.values(), *([self._watch] if self._watch else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def starting(self, view: View) -> bool:
        task = self._starts.get(view.name)
        return task is not None and not task.done()

    async def ask(self, view: View) -> bool:
        """Start rebuilding `view` in the background unless it is being rebuilt already (here,
        in another replica, or since before a restart); returns whether this started one."""
        # Whether this process's own start is under way is asked before the rows are read: one
        # that ends meanwhile has committed its rows by then, and they are seen.
        if self.starting(view):
            return False
        async with self.database.transaction(write=False) as conn:
            running = await under_way(conn, view)
        # No await between these checks and the task's creation: two requests cannot both start.
        if running is not None or self.starting(view):
            return False
        self._failed.pop(view.name, None)
        self._errors.pop(view.name, None)
        self._started_at[view.name] = dt.datetime.now(dt.UTC)
        self._starts[view.name] = asyncio.create_task(
            self._rebuild(view), name=f"rebuild-{view.name}"
        )
        return True

    async def under_way(self) -> list[UnderWay]:
        """Every rebuild under way in this service's database."""
        async with self.database.transaction(write=False) as conn:
            found = [await under_way(conn, view) for view in self.views.values()]
        return [rebuild for rebuild in found if rebuild is not None]

    async def _rebuild(self, view: View) -> None:
        # A task copies the context of the request that started it: not its ids.
        structlog.contextvars.unbind_contextvars("correlation_id", "causation_id", "event_id")
        consumers = self.consumers_of(view)
        started_at = self._started_at[view.name]
        cleared = False
        try:
            js = consumers[0].nats.jetstream
            until = {}
            for consumer in consumers:  # fails while NATS is away, before anything is cleared
                stream = await js.stream_info(consumer.subscription.stream.name)
                until[consumer.name] = int(stream.state.last_seq or 0)
            for consumer in consumers:
                await consumer.stop()
            try:
                async with self.database.transaction() as conn:
                    if await under_way(conn, view) is not None:
                        return  # another replica started one meanwhile: that one goes on
                    for clear in {c.subscription.clear for c in consumers}:
                        assert clear is not None  # a Subscription with a view has one
                        await clear(conn)
                    names = [consumer.name for consumer in consumers]
                    await conn.execute(inbox.delete().where(inbox.c.consumer.in_(names)))
                    await moved(conn, view, names)
                    await mark(conn, view, until, restarted=False, started_at=started_at)
                cleared = True
                for consumer in consumers:
                    consumer.lag = None  # of the durable about to go
                log.info("view.rebuild_started", view=view.name, events=sum(until.values()))
            finally:
                for consumer in consumers:
                    consumer.start()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if cleared:  # the watch finishes the work when NATS is back
                self._errors[view.name] = describe(error)
            else:
                self._failed[view.name] = describe(error)
            log.warning(
                "view.rebuild_interrupted" if cleared else "view.rebuild_failed",
                view=view.name,
                error=describe(error),
            )
        finally:
            self._wake.set()

    async def _watching(self) -> None:
        structlog.contextvars.unbind_contextvars("correlation_id", "causation_id", "event_id")
        while True:
            self._wake.clear()
            busy = True
            try:
                busy = await self._follow()
            except Exception as error:  # the database, most likely: try again
                log.warning("view.rebuild_watch_failed", error=describe(error))
            # Not asyncio.wait_for: on Python 3.11 it can swallow a cancellation that comes as
            # the event is set, and `stop` then waits for ever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_seconds if busy else self.idle_poll_seconds):
                    await self._wake.wait()

    async def _follow(self) -> bool:
        """One look at every rebuild under way; returns whether there is any."""
        async with self.database.transaction(write=False) as conn:
            rows = list((await conn.execute(sa.select(rebuilds))).all())
        busy = False
        for view in self.views.values():
            marked = [row for row in rows if row.view == view.name]
            if not marked:
                continue
            busy = True
            if self.starting(view):
                continue  # its own task restarts the consumers
            try:
                await self._follow_one(view, marked)
                self._errors.pop(view.name, None)
            except NATS_ERRORS as error:
                self._errors[view.name] = describe(error)
        return busy

    async def _follow_one(self, view: View, marked: Sequence[sa.Row[tuple[object, ...]]]) -> None:
        by_name = {consumer.name: consumer for consumer in self.consumers_of(view)}
        reached: dict[str, int] = {}
        caught_up = True
        for row in marked:
            feeder = by_name.get(row.consumer)
            if feeder is None:  # a subscription this version no longer has feeds nothing
                reached[row.consumer] = int(row.until_sequence)
                continue
            if not row.restarted:
                # Its durable is still where it was before the clear, perhaps at the end: its
                # position says nothing. A consumer starting deletes it; one that reads on from
                # it (the view was cleared by another replica) is started again.
                reached[row.consumer], caught_up = int(row.processed), False
                if feeder.reading:
                    log.info("view.rebuild_resumed", view=view.name, consumer=feeder.name)
                    await feeder.restart()
                continue
            processed, done = await _reached(feeder, int(row.until_sequence))
            reached[row.consumer] = processed
            caught_up = caught_up and done
        async with self.database.transaction() as conn:
            if caught_up:
                measured = [row.consumer for row in marked]
                await conn.execute(rebuilds.delete().where(rebuilds.c.consumer.in_(measured)))
            else:
                for row in marked:
                    if reached[row.consumer] != row.processed:
                        await conn.execute(
                            rebuilds.update()
                            .where(rebuilds.c.consumer == row.consumer)
                            .values(processed=reached[row.consumer])
                        )
        if caught_up:
            began = min(aware(row.started_at) for row in marked)
            log.info(
                "view.rebuilt",
                view=view.name,
                events=sum(int(row.until_sequence) for row in marked),
                seconds=round((dt.datetime.now(dt.UTC) - began).total_seconds(), 1),
            )

    async def report(self, view: View, *, ask_nats: bool = True) -> Report:
        """Where the rebuild of `view` stands, with the consumers' progress if NATS answers
        (and is asked: the answer to the request that starts a rebuild does without)."""
        consumers = self.consumers_of(view)
        starting = self.starting(view)  # before the rows: see `ask`
        async with self.database.transaction(write=False) as conn:
            running = await under_way(conn, view)
        if running is not None or starting:
            state: State = "rebuilding"
            error = self._errors.get(view.name)
        elif view.name in self._failed:
            state, error = "failed", self._failed[view.name]
        else:
            state, error = "built", None
        processed = last = pending = None
        if ask_nats:
            try:
                if not consumers[0].nats.connected:
                    raise ConnectionError("not connected")
                progress = [await consumer.progress() for consumer in consumers]
                processed = sum(p.processed for p in progress)
                last = sum(p.last_sequence for p in progress)
                pending = sum(p.pending for p in progress)
            except NATS_ERRORS as nats_error:
                error = error or describe(nats_error)
        if state == "rebuilding":
            # The durables being made again say nothing yet; the rows say how far it is.
            processed = running.processed if running is not None else 0
        return Report(
            view=view,
            state=state,
            consumers=tuple(consumer.name for consumer in consumers),
            streams=tuple(consumer.subscription.stream.name for consumer in consumers),
            processed=processed,
            last_sequence=last,
            pending=pending,
            target=running.total if running is not None else None,
            started_at=running.started_at
            if running is not None
            else self._started_at.get(view.name),
            error=error,
        )


async def _reached(consumer: IdempotentConsumer, until: int) -> tuple[int, bool]:
    """How far a restarted consumer has read towards `until`, and whether it is there."""
    js = consumer.nats.jetstream
    try:
        info = await js.consumer_info(consumer.subscription.stream.name, consumer.name)
    except NotFoundError:  # being made again
        return 0, False
    floor = int(info.ack_floor.stream_seq or 0) if info.ack_floor else 0
    if floor >= until:
        return until, True
    # A filtered consumer's floor stops at the last message it takes, short of `until` when the
    # stream ends with others: there, nothing left pending says it is there. For the others the
    # floor alone decides.
    filtered = bool(consumer.subscription.filter_subjects)
    nothing_pending = not (int(info.num_pending or 0) + int(info.num_ack_pending or 0))
    return floor, filtered and nothing_pending
