"""The unit of work on a service's database: one transaction over its event store, its
idempotency records and its own views (the `Work` that routes receive)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import idempotency, store
from score_chassis.commands import Idempotency, Replayed
from score_chassis.database import Database
from score_chassis.store import Causation, NewEvent, RecordedEvent

V = TypeVar("V")

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SqlWork(Generic[V]):
    """One transaction on the service's database."""

    def __init__(
        self,
        conn: AsyncConnection,
        views: V,
        *,
        source: str,
        idempotency_ttl: dt.timedelta,
        clock: Clock,
    ) -> None:
        self.conn = conn
        self._views = views
        self._source = source
        self._ttl = idempotency_ttl
        self._clock = clock
        self._loaded: dict[str, int] = {}

    @property
    def views(self) -> V:
        return self._views

    async def load(self, stream_id: str) -> list[RecordedEvent]:
        history = await store.load(self.conn, stream_id)
        self._loaded[stream_id] = len(history)
        return history

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        causation: Causation,
    ) -> int:
        return await store.append(
            self.conn,
            stream_id,
            expected_version,
            events,
            causation=causation,
            source=self._source,
            now=self._clock(),
            loaded=self._loaded.get(stream_id) == expected_version,
        )

    async def answer_to(self, key: Idempotency) -> Replayed | None:
        return await idempotency.answer_to(self.conn, key, since=self._clock() - self._ttl)

    async def remember(self, key: Idempotency, answer: Replayed) -> None:
        now = self._clock()
        await idempotency.remember(
            self.conn, key, answer, now=now, forgotten_before=now - self._ttl
        )


class SqlUnitOfWork(Generic[V]):
    """Transactions on `database`, with the service's views made on each connection."""

    def __init__(
        self,
        database: Database,
        *,
        source: str,
        views: Callable[[AsyncConnection], V],
        idempotency_ttl: dt.timedelta = dt.timedelta(hours=24),
        clock: Clock = utc_now,
    ) -> None:
        self.database = database
        self.source = source
        self.views = views
        self.idempotency_ttl = idempotency_ttl
        self.clock = clock

    @asynccontextmanager
    async def begin(self, *, write: bool) -> AsyncIterator[SqlWork[V]]:
        async with self.database.transaction(write=write) as conn:
            yield SqlWork(
                conn,
                self.views(conn),
                source=self.source,
                idempotency_ttl=self.idempotency_ttl,
                clock=self.clock,
            )
