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

A view that can be built beside the one served (its subscriptions have a `Beside`) is never
cleared. Its rebuild instead:

1. reads the streams' last sequences, as above;
2. in one transaction, empties the tables beside the view and the inbox rows of the consumers
   that fill them, and writes their rows in `rebuilds`, marked `beside`: the view's reads go on
   answering from the whole, served view;
3. starts those consumers, which read the streams from their first event into the tables beside.

Once they have caught up, the watch stops the view's own consumers and, in one transaction
(when the tables beside hold every event the view holds, which they soon do), replaces the
view's content with theirs, gives the view's consumers the inbox rows of those beside it, and
deletes the rows. The view's consumers then carry on from their durables: what they get again
is in their inbox. A reader sees the view before or after, whole either way.

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
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.consumer import ClearView, IdempotentConsumer
from score_chassis.database import Database
from score_chassis.logs import get_logger
from score_chassis.tables import inbox, rebuilds
from score_chassis.tasks import cancel_until_done
from score_chassis.view import UnderWay, View, any_under_way, aware, mark, moved

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
    beside: bool = False
    """The rebuild under way fills tables beside the view, which goes on being served."""


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
        beside: Sequence[IdempotentConsumer] = (),
        poll_seconds: float = 0.25,
        idle_poll_seconds: float = 5.0,
        switch_wait_seconds: float = 10.0,
    ) -> None:
        self.database = database
        self.views: dict[str, View] = {}
        self._consumers: dict[str, list[IdempotentConsumer]] = {}
        self._besides: dict[str, list[IdempotentConsumer]] = {}
        self._wake = asyncio.Event()
        for consumer in consumers:
            view = consumer.subscription.view
            if view is not None:
                self.views.setdefault(view.name, view)
                self._consumers.setdefault(view.name, []).append(consumer)
                # A consumer that marks its view itself (a fresh or restored database): watch it.
                consumer.on_rebuilding = self._wake.set
        building = {consumer.name: consumer for consumer in beside}
        for view_name, of_view in self._consumers.items():
            subscriptions = [consumer.subscription for consumer in of_view]
            if all(sub.beside is None for sub in subscriptions):
                continue
            names = [sub.besides().durable for sub in subscriptions if sub.beside is not None]
            if len(names) != len(subscriptions) or not all(name in building for name in names):
                raise ValueError(f"{view_name}: every consumer of a view built beside it needs one")
            self._besides[view_name] = [building[name] for name in names]
        self.poll_seconds = poll_seconds
        self.switch_wait_seconds = switch_wait_seconds
        self.idle_poll_seconds = idle_poll_seconds
        self._starts: dict[str, asyncio.Task[None]] = {}
        self._started_at: dict[str, dt.datetime] = {}
        self._failed: dict[str, str] = {}
        self._errors: dict[str, str] = {}
        self._watch: asyncio.Task[None] | None = None

    def consumers_of(self, view: View) -> list[IdempotentConsumer]:
        return self._consumers[view.name]

    def besides_of(self, view: View) -> list[IdempotentConsumer]:
        """The consumers that build `view` beside it, in the order of its own (none if it is
        rebuilt by clearing it)."""
        return self._besides.get(view.name, [])

    def start(self) -> None:
        """Watch the rebuilds under way, including those left by an earlier process."""
        if self.views:
            self._watch = asyncio.create_task(self._watching(), name="rebuild-watch")

    async def stop(self) -> None:
        tasks = [*self._starts.values(), *([self._watch] if self._watch else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            await cancel_until_done(task)
        for besides in self._besides.values():
            for consumer in besides:
                await consumer.stop()

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
            running = await any_under_way(conn, view)
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
            found = [await any_under_way(conn, view) for view in self.views.values()]
        return [rebuild for rebuild in found if rebuild is not None]

    async def _rebuild(self, view: View) -> None:
        # A task copies the context of the request that started it: not its ids.
        structlog.contextvars.unbind_contextvars("correlation_id", "causation_id", "event_id")
        if self.besides_of(view):
            await self._start_beside(view)
            return
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
                    if await any_under_way(conn, view) is not None:
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

    async def _start_beside(self, view: View) -> None:
        besides = self.besides_of(view)
        started_at = self._started_at[view.name]
        try:
            js = besides[0].nats.jetstream
            until = {}
            for consumer in besides:  # fails while NATS is away, before anything is changed
                stream = await js.stream_info(consumer.subscription.stream.name)
                until[consumer.name] = int(stream.state.last_seq or 0)
            for consumer in besides:  # left running by a build another replica switched
                await consumer.stop()
            async with self.database.transaction() as conn:
                if await any_under_way(conn, view) is not None:
                    return  # another replica started one meanwhile: that one goes on
                for clear in _clears_beside(self.consumers_of(view)):
                    await clear(conn)
                names = [consumer.name for consumer in besides]
                await conn.execute(inbox.delete().where(inbox.c.consumer.in_(names)))
                await mark(conn, view, until, restarted=False, started_at=started_at, beside=True)
            log.info(
                "view.rebuild_started", view=view.name, events=sum(until.values()), beside=True
            )
            for consumer in besides:
                consumer.lag = None
                consumer.start()  # as it starts, it deletes its durable of an earlier build
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._failed[view.name] = describe(error)
            log.warning("view.rebuild_failed", view=view.name, error=describe(error))
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
            marked = [row for row in rows if row.view == view.name and not row.beside]
            beside = [row for row in rows if row.view == view.name and row.beside]
            if not beside and not self.starting(view):
                for consumer in self.besides_of(view):  # switched, here or by another replica
                    if consumer.running:
                        await consumer.stop()
            if not marked and not beside:
                continue
            busy = True
            if self.starting(view):
                continue  # its own task restarts the consumers
            try:
                if marked:
                    await self._follow_one(view, marked)
                else:
                    await self._follow_beside(view, beside)
                self._errors.pop(view.name, None)
            except NATS_ERRORS as error:
                self._errors[view.name] = describe(error)
        return busy

    async def _follow_one(self, view: View, marked: Sequence[sa.Row[tuple[object, ...]]]) -> None:
        reached, caught_up = await self._progress(view, self.consumers_of(view), marked)
        if not caught_up:
            await self._record(marked, reached)
            return
        async with self.database.transaction() as conn:
            measured = [row.consumer for row in marked]
            await conn.execute(rebuilds.delete().where(rebuilds.c.consumer.in_(measured)))
        _rebuilt(view, marked)

    async def _follow_beside(
        self, view: View, marked: Sequence[sa.Row[tuple[object, ...]]]
    ) -> None:
        reached, caught_up = await self._progress(view, self.besides_of(view), marked)
        if not caught_up:
            await self._record(marked, reached)
        elif await self._switch(view):
            _rebuilt(view, marked)

    async def _progress(
        self,
        view: View,
        consumers: Sequence[IdempotentConsumer],
        marked: Sequence[sa.Row[tuple[object, ...]]],
    ) -> tuple[dict[str, int], bool]:
        """How far each marked consumer has read towards its target, and whether all are
        there; consumers that need it are started again on the way."""
        by_name = {consumer.name: consumer for consumer in consumers}
        reached: dict[str, int] = {}
        caught_up = True
        for row in marked:
            consumer = by_name.get(row.consumer)
            if consumer is None:  # a subscription this version no longer has feeds nothing
                reached[row.consumer] = int(row.until_sequence)
                continue
            if row.beside and not consumer.running:  # after a restart, or in another replica
                consumer.start()
                reached[row.consumer], caught_up = int(row.processed), False
                continue
            if not row.restarted:
                # Its durable is still where it was before the clear, perhaps at the end: its
                # position says nothing. A consumer starting deletes it; one that reads on from
                # it (the view was cleared by another replica) is started again.
                reached[row.consumer], caught_up = int(row.processed), False
                if consumer.reading:
                    log.info("view.rebuild_resumed", view=view.name, consumer=consumer.name)
                    await consumer.restart()
                continue
            processed, done = await _reached(consumer, int(row.until_sequence))
            reached[row.consumer] = processed
            caught_up = caught_up and done
        return reached, caught_up

    async def _record(
        self, marked: Sequence[sa.Row[tuple[object, ...]]], reached: dict[str, int]
    ) -> None:
        async with self.database.transaction() as conn:
            for row in marked:
                if reached[row.consumer] != row.processed:
                    await conn.execute(
                        rebuilds.update()
                        .where(rebuilds.c.consumer == row.consumer)
                        .values(processed=reached[row.consumer])
                    )

    async def _switch(self, view: View) -> bool:
        """Replace the view's content with what was built beside it; returns whether this
        process did (another replica may have, or the tables beside are still behind)."""
        consumers, besides = self.consumers_of(view), self.besides_of(view)
        pairs = [(own.name, beside.name) for own, beside in zip(consumers, besides, strict=True)]
        switches = _switches(consumers)
        for consumer in consumers:  # so that what they handle is soon beside it too
            await consumer.stop()
        try:
            switched = await self._switched(view, pairs, switches)
        finally:
            for consumer in consumers:
                consumer.start()
        if not switched:
            for consumer in besides:  # reading on, unless another replica switched it
                if not consumer.running:
                    consumer.start()
            return False
        js = besides[0].nats.jetstream
        for consumer in besides:
            # One left (NATS away, a crash before this) is deleted by the next build's start.
            with contextlib.suppress(*NATS_ERRORS):
                await js.delete_consumer(consumer.subscription.stream.name, consumer.name)
        return True

    async def _switched(
        self, view: View, pairs: Sequence[tuple[str, str]], switches: Sequence[ClearView]
    ) -> bool:
        deadline = asyncio.get_running_loop().time() + self.switch_wait_seconds
        clears = _clears_beside(self.consumers_of(view))
        while True:
            async with self.database.transaction(write=False) as conn:
                missing = await _missing_beside(conn, pairs)
            if not missing:
                for consumer in self.besides_of(view):  # nothing more is written beside it
                    await consumer.stop()
                try:
                    async with self.database.transaction() as conn:
                        return await _switch(conn, view, pairs, switches, clears)
                except _Behind as behind:  # another replica's consumer handled one meanwhile
                    missing = behind.missing
                for consumer in self.besides_of(view):
                    consumer.start()
            if asyncio.get_running_loop().time() > deadline:
                self._errors[view.name] = (
                    f"the view beside lacks {missing} events the served one has; "
                    "it goes on reading (a dead letter beside it would hold it back)"
                )
                log.warning("view.rebuild_switch_waiting", view=view.name, missing=missing)
                return False
            await asyncio.sleep(self.poll_seconds)

    async def report(self, view: View, *, ask_nats: bool = True) -> Report:
        """Where the rebuild of `view` stands, with the consumers' progress if NATS answers
        (and is asked: the answer to the request that starts a rebuild does without)."""
        consumers = self.consumers_of(view)
        starting = self.starting(view)  # before the rows: see `ask`
        async with self.database.transaction(write=False) as conn:
            running = await any_under_way(conn, view)
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
            beside=running.beside if running is not None else bool(self.besides_of(view)),
        )


def _rebuilt(view: View, marked: Sequence[sa.Row[tuple[object, ...]]]) -> None:
    began = min(aware(row.started_at) for row in marked)
    log.info(
        "view.rebuilt",
        view=view.name,
        events=sum(int(row.until_sequence) for row in marked),
        seconds=round((dt.datetime.now(dt.UTC) - began).total_seconds(), 1),
        beside=bool(marked[0].beside),
    )


class _Behind(Exception):
    def __init__(self, missing: int) -> None:
        super().__init__(f"{missing} events")
        self.missing = missing


def _clears_beside(consumers: Sequence[IdempotentConsumer]) -> list[ClearView]:
    found = [c.subscription.beside.clear for c in consumers if c.subscription.beside]
    return list(dict.fromkeys(found))


def _switches(consumers: Sequence[IdempotentConsumer]) -> list[ClearView]:
    found = [c.subscription.beside.switch for c in consumers if c.subscription.beside]
    return list(dict.fromkeys(found))


async def _missing_beside(conn: AsyncConnection, pairs: Sequence[tuple[str, str]]) -> int:
    """How many events the view's consumers handled that those beside it have not."""
    missing = 0
    for own, beside in pairs:
        theirs = inbox.alias("beside")
        found = await conn.execute(
            sa.select(sa.func.count())
            .select_from(inbox)
            .where(
                inbox.c.consumer == own,
                ~sa.exists().where(
                    theirs.c.consumer == beside, theirs.c.event_id == inbox.c.event_id
                ),
            )
        )
        missing += int(found.scalar_one())
    return missing


async def _switch(
    conn: AsyncConnection,
    view: View,
    pairs: Sequence[tuple[str, str]],
    switches: Sequence[ClearView],
    clears: Sequence[ClearView],
) -> bool:
    """In one transaction: the view's content replaced by what was built beside it, and its
    consumers' inbox by that of the consumers beside, which are emptied. Raises `_Behind`
    (rolling it back) if those beside lack an event the view has."""
    if conn.dialect.name == "postgresql":
        # No consumer records an event handled until this commits (another replica's would be
        # in neither inbox counted below); reads go on. SQLite has one writer at a time anyway.
        await conn.execute(sa.text("LOCK TABLE inbox IN SHARE ROW EXCLUSIVE MODE"))
    ended = await conn.execute(
        rebuilds.delete().where(rebuilds.c.view == view.name, rebuilds.c.beside)
    )
    if not ended.rowcount:
        return False  # another replica switched it
    if missing := await _missing_beside(conn, pairs):
        raise _Behind(missing)
    for switch in switches:
        await switch(conn)
    names = [own for own, _beside in pairs]
    await conn.execute(inbox.delete().where(inbox.c.consumer.in_(names)))
    for own, beside in pairs:
        await conn.execute(
            inbox.insert().from_select(
                ["consumer", "event_id", "processed_at"],
                sa.select(sa.literal(own), inbox.c.event_id, inbox.c.processed_at).where(
                    inbox.c.consumer == beside
                ),
            )
        )
    await conn.execute(inbox.delete().where(inbox.c.consumer.in_([b for _own, b in pairs])))
    for clear in clears:
        await clear(conn)
    await moved(conn, view, names)
    return True


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
