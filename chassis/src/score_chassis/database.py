"""One async SQLAlchemy engine per service, on SQLite (default) or PostgreSQL.

Writes on SQLite begin with `BEGIN IMMEDIATE`: a deferred transaction that reads and then
writes fails at once with "database is locked" when another writer got in between, whereas an
immediate one waits its turn and then reads the current state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine


class Database:
    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.url = url
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        # Bound parameters hold event data (names, tax ids): keep them out of error messages,
        # which end up in logs. No `echo`: it would print statements through a handler of
        # SQLAlchemy's own, outside the service's log chain (score_chassis.logs).
        options: dict[str, Any] = {"hide_parameters": True}
        if self.is_sqlite:
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            options.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        self._writer = asyncio.Lock()
        if self.is_sqlite:
            _take_over_sqlite_transactions(self.engine)

    @asynccontextmanager
    async def transaction(
        self, *, write: bool = True, snapshot: bool = False
    ) -> AsyncIterator[AsyncConnection]:
        """A connection inside one transaction, committed on success, rolled back on error.

        `snapshot`: a read whose statements must all see one moment (a check that a view is
        complete, then the view). SQLite's transactions always do; PostgreSQL's default, READ
        COMMITTED, lets each statement see what committed since, so such a read runs at
        REPEATABLE READ there (read-only, it never fails to serialise).
        """
        if not (self.is_sqlite and write):
            async with self.engine.connect() as conn:
                if self.is_sqlite:  # a reader takes no lock
                    await conn.execution_options(score_begin="DEFERRED")
                elif snapshot:
                    await conn.execution_options(isolation_level="REPEATABLE READ")
                async with conn.begin():
                    yield conn
            return
        # SQLite has one writer at a time. Writers of this process queue here, in the event
        # loop, rather than in SQLite's busy handler, which sleeps up to 100 ms between
        # tries: under a few concurrent writers that sleeping is most of the latency.
        async with self._writer, self.engine.connect() as conn:
            await conn.execution_options(score_begin="IMMEDIATE")
            async with conn.begin():
                yield conn

    async def ping(self) -> None:
        async with self.transaction(write=False) as conn:  # no write lock for a probe
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _take_over_sqlite_transactions(engine: AsyncEngine) -> None:
    # The sqlite3 module's own transaction handling cannot begin IMMEDIATE transactions;
    # switch it off and emit BEGIN ourselves (the SQLAlchemy-documented recipe).
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("score_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")
