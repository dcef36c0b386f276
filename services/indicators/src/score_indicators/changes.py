"""Tells listeners when the projection has changed, as server-sent events.

Every consumer transaction moves the projection's version (`score_chassis.view.moved`), so a
change of version is exactly "new events were counted" (or a rebuild began). One poller per
process reads the version a few times a second, only while someone listens, and hands each
change to every listener: a hundred dashboards open cost one cheap query per tick, not a
hundred. A listener is told the latest version only; one that is slow to read misses the
versions in between, which is all a page that re-reads its figures needs.

Something else the page shows may change without the projection's version: the milestones,
which the milestone watch records a moment after the figures that reached them. What `also`
counts (the milestones recorded) is watched beside the version, in the same read.

A stream ends when the server is stopping. uvicorn waits for every response to finish
before it shuts the app's lifespan down, so a stream that waited for the lifespan would hold
the shutdown forever; the poller notices uvicorn's own stop flag instead (see
`_server_stopping`). A stream also ends after `lifetime`, whatever server runs it: the page
reconnects at once, and nothing holds a connection open for days.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.database import Database
from score_chassis.logs import get_logger
from score_chassis.view import Version, View, version_of

log = get_logger(__name__)

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15.0
"""A comment line this often keeps proxies and load balancers from closing an idle stream
(most close one after 30 to 60 seconds of silence)."""
LIFETIME_SECONDS = 600.0
RETRY_MILLISECONDS = 2000
"""What the stream asks a client to wait before it reconnects."""


def frame(event: str, data: object) -> str:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


Seen = tuple[Version, int]
"""The projection's version, and what `also` counted."""


def _number(seen: Seen) -> int:
    """One number for clients: it grows with every consumer transaction (and with `also`)."""
    version, also = seen
    return sum(number for _, number in version) + also


async def _nothing(conn: AsyncConnection) -> int:
    return 0


def _server_stopping() -> bool:
    """uvicorn has been asked to stop (SIGINT or SIGTERM, or `should_exit` set in a test).

    uvicorn handles those signals with a method of its `Server`, which sets `should_exit`;
    the handler in place names the server. Elsewhere (another server, no signal handler)
    this is False, and `lifetime` bounds a stream instead.
    """
    server = getattr(signal.getsignal(signal.SIGTERM), "__self__", None)
    return bool(getattr(server, "should_exit", False))


class Changes:
    """The projection's changes, for any number of listeners, from one poller."""

    def __init__(
        self,
        database: Database,
        view: View,
        *,
        poll_seconds: float = POLL_SECONDS,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        lifetime_seconds: float = LIFETIME_SECONDS,
        also: Callable[[AsyncConnection], Awaitable[int]] = _nothing,
    ) -> None:
        self.database = database
        self.view = view
        self.also = also
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.lifetime_seconds = lifetime_seconds
        self._listeners: set[asyncio.Queue[Seen | None]] = set()
        self._poller: asyncio.Task[None] | None = None
        self._seen: Seen | None = None
        self._closed = False
        self.pollers_started = 0
        """How many pollers this process has started (one at a time), for tests and logs."""

    @property
    def listeners(self) -> int:
        return len(self._listeners)

    async def stream(self) -> AsyncIterator[str]:
        """The frames of one listener's stream: at once the current version, then each change,
        heartbeats in between; until the server stops or the stream's lifetime is over."""
        if self._closed:
            return
        queue: asyncio.Queue[Seen | None] = asyncio.Queue(maxsize=1)
        self._listeners.add(queue)
        self._ensure_poller()
        ends_at = time.monotonic() + self.lifetime_seconds
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n"
            sent = self._seen or await self._read()
            if sent is not None:
                yield frame("changed", {"version": _number(sent)})
            while (left := ends_at - time.monotonic()) > 0:
                try:
                    async with asyncio.timeout(min(self.heartbeat_seconds, left)):
                        changed = await queue.get()
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if changed is None:  # the server is stopping
                    return
                if changed != sent:  # the poller's first read may be what was sent first
                    sent = changed
                    yield frame("changed", {"version": _number(changed)})
        finally:
            self._listeners.discard(queue)

    def _ensure_poller(self) -> None:
        if self._poller is None or self._poller.done():
            self.pollers_started += 1
            self._poller = asyncio.create_task(self._poll(), name="projection-changes")

    async def _read(self) -> Seen | None:
        try:
            async with self.database.transaction(write=False) as conn:
                return await version_of(conn, self.view), await self.also(conn)
        except Exception as error:  # the database may be briefly away: try at the next tick
            log.warning("changes.version_unread", error=repr(error))
            return None

    async def _poll(self) -> None:
        """Read the version every tick while anyone listens; tell each listener of a change."""
        while self._listeners and not self._closed:
            if _server_stopping():
                self._end_streams()
                return
            seen = await self._read()
            if seen is not None and seen != self._seen:
                # Also after a first read: it may be newer than what a listener was sent.
                self._seen = seen
                for queue in list(self._listeners):
                    _replace(queue, seen)
            await asyncio.sleep(self.poll_seconds)
        # Nobody listens: the version may move unseen until someone does again.
        self._seen = None

    def _end_streams(self) -> None:
        self._closed = True
        for queue in list(self._listeners):
            _replace(queue, None)

    async def close(self) -> None:
        """End every stream and the poller (at the app's shutdown)."""
        self._end_streams()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller


def _replace(queue: asyncio.Queue[Seen | None], item: Seen | None) -> None:
    """Put `item` in a queue of one, in place of what the listener has not read yet."""
    with contextlib.suppress(asyncio.QueueEmpty):
        queue.get_nowait()
    queue.put_nowait(item)
