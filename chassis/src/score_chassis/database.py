"""One async SQLAlchemy engine per service, on SQLite (default) or PostgreSQL.

Writes on SQLite begin with `BEGIN IMMEDIATE`: a deferred transaction that reads and then
writes fails at once with "database is locked" when another writer got in between, whereas an
immediate one waits its turn and then reads the current state.

SQLite's statements run on the event loop, at once (ADR 016). A statement on a local file takes
tens of microseconds; handing each to a worker thread and back, as aiosqlite does, costs more
than the statement, and under load each hand-over waits for the interpreter lock, so that a
write transaction of a few statements held SQLite's lock for tens of milliseconds.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncTransaction,
    create_async_engine,
)

LOCKED_WAIT_SECONDS = 30.0
"""How long a writer waits for SQLite's write lock held by another process (`score replay`)."""


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
            options["async_creator"] = _inline_sqlite(parsed)
        else:
            options.update(pool_size=10, max_overflow=10)
        self.engine: AsyncEngine = create_async_engine(url, **options)
        self._writer = asyncio.Lock()
        self._writing: AsyncConnection | None = None
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
        # tries: under a few concurrent writers that sleeping is most of the latency. They
        # take turns on one connection, kept open.
        async with self._writer:
            conn = await self._writer_connection()
            transaction = await _begin_when_unlocked(conn)
            ended = False
            try:
                try:
                    yield conn
                except BaseException:
                    await transaction.rollback()
                    ended = True
                    raise
                await transaction.commit()
                ended = True
            finally:
                if not ended:  # a commit or a rollback failed: the next writer starts afresh
                    self._writing = None
                    await conn.invalidate()

    async def _writer_connection(self) -> AsyncConnection:
        if self._writing is None or self._writing.invalidated or self._writing.closed:
            self._writing = await self.engine.connect()
            await self._writing.execution_options(score_begin="IMMEDIATE")
        return self._writing

    async def ping(self) -> None:
        async with self.transaction(write=False) as conn:  # no write lock for a probe
            await conn.execute(sa.text("SELECT 1"))

    async def dispose(self) -> None:
        if self._writing is not None:
            await self._writing.close()
            self._writing = None
        await self.engine.dispose()


class _InlineConnection(aiosqlite.Connection):
    """aiosqlite's connection with every call made at once, on the caller's thread (the event
    loop's). Its thread only opens and closes the connection. SQLAlchemy's dialect for
    aiosqlite stays as it is; `test_database` checks that statements run on the loop."""

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    @property
    def sqlite(self) -> sqlite3.Connection:
        return self._conn


def sqlite_of(conn: AsyncConnection) -> sqlite3.Connection | None:
    """The sqlite3 connection under `conn`, if it is one of ours (whose calls run inline)."""
    sync = conn.sync_connection
    driver = None if sync is None else sync.connection.driver_connection
    return driver.sqlite if isinstance(driver, _InlineConnection) else None


class AsyncpgStatements:
    """Statements run on the asyncpg connection under a SQLAlchemy one, in its transaction,
    without SQLAlchemy's execution context and greenlet, which cost more than asyncpg's own
    work (ADR 016).

    The transaction stays SQLAlchemy's: begun by its asyncpg adapter as its first statement
    would begin it, ended by it. Errors come out as SQLAlchemy raises them (`IntegrityError`,
    `OperationalError`, …), marked `connection_invalidated` where the connection was lost.
    """

    def __init__(self, conn: AsyncConnection, adapter: Any) -> None:
        self._conn = conn
        self._adapter = adapter

    async def fetch(self, sql: str, arguments: Sequence[Any]) -> list[Any]:
        adapter = self._adapter
        async with adapter._execute_mutex:
            try:
                if adapter._transaction is None:
                    await adapter._start_transaction()
                return list(await adapter._connection.fetch(sql, *arguments))
            except Exception as error:
                cause, translated = error, self._translated(sql, error)
        if isinstance(translated, DBAPIError) and translated.connection_invalidated:
            await self._conn.invalidate()  # as SQLAlchemy does: the pool forgets it
        raise translated from cause

    def _translated(self, sql: str, error: Exception) -> Exception:
        adapter = self._adapter
        try:
            adapter._handle_exception(error)  # raises the error as the adapted DB-API's
        except adapter.dbapi.Error as dbapi_error:
            translated = DBAPIError.instance(
                sql,
                None,
                dbapi_error,
                adapter.dbapi.Error,
                hide_parameters=True,
                connection_invalidated=self._conn.dialect.is_disconnect(dbapi_error, adapter, None),
            )
            assert isinstance(translated, Exception)
            return translated
        except Exception as other:  # whatever else the adapter made of it
            return other
        return error


def asyncpg_of(conn: AsyncConnection) -> AsyncpgStatements | None:
    """The asyncpg connection under `conn`, if it runs on one."""
    sync = conn.sync_connection
    if sync is None or conn.dialect.driver != "asyncpg":
        return None
    return AsyncpgStatements(conn, sync.connection.dbapi_connection)


def _inline_sqlite(url: URL) -> Callable[[], _InlineConnection]:
    dialect = url.get_dialect()()
    args, kwargs = dialect.create_connect_args(url)
    # Opened on aiosqlite's thread, used on the loop's.
    kwargs["check_same_thread"] = False
    connector = partial(sqlite3.connect, *args, **kwargs)
    return lambda: _InlineConnection(connector, iter_chunk_size=64)


async def _begin_when_unlocked(conn: AsyncConnection) -> AsyncTransaction:
    """Take SQLite's write lock, waiting on the event loop while another process holds it.

    The connection's own busy handler would wait blocking the loop: it is kept short
    (`busy_timeout`), and this waits the rest, asleep, giving the loop back between tries.
    """
    deadline = time.monotonic() + LOCKED_WAIT_SECONDS
    pause = 0.001
    while True:
        try:
            return await conn.begin()
        except OperationalError as error:
            if "locked" not in str(error.orig) or time.monotonic() > deadline:
                raise
        await conn.rollback()
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.05)


def sqlite_error(sql: str, error: sqlite3.Error) -> DBAPIError:
    """The driver's error as SQLAlchemy raises it (`OperationalError`, `IntegrityError`, …)."""
    translated = DBAPIError.instance(sql, None, error, sqlite3.Error, hide_parameters=True)
    assert isinstance(translated, DBAPIError)
    return translated


def _take_over_sqlite_transactions(engine: AsyncEngine) -> None:
    # The sqlite3 module's own transaction handling cannot begin IMMEDIATE transactions;
    # switch it off and emit BEGIN ourselves (the SQLAlchemy-documented recipe).
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Statements run on the event loop: SQLite's own wait for a lock held by another
        # process blocks it, so it is short; writers wait longer, asleep (_begin_when_unlocked).
        cursor.execute("PRAGMA busy_timeout=5")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("score_begin", "IMMEDIATE")
        # On the driver itself: through SQLAlchemy it costs a statement's execution context.
        sql = f"BEGIN {mode}"
        try:
            conn.connection.driver_connection.sqlite.execute(sql)
        except sqlite3.Error as error:
            raise sqlite_error(sql, error) from error
