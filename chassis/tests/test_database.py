"""The database of a service: SQLite's calls made on the event loop, writers waiting for a lock
held elsewhere without stopping the loop, and the prepared statements of every command, alike
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from score_chassis.database import Database, sqlite_of
from score_chassis.prepared import Prepared
from score_chassis.tables import events, idempotency_keys


async def test_sqlite_statements_run_on_the_event_loops_thread(tmp_path: Path) -> None:
    # A hand-over per statement to a worker thread cost more than the statement (ADR 016).
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        for write in (True, False):
            async with database.transaction(write=write) as conn:
                driver = sqlite_of(conn)
                assert driver is not None
                driver.create_function("thread_id", 0, threading.get_ident)
                ran_on = (await conn.execute(sa.text("SELECT thread_id()"))).scalar_one()
            assert ran_on == threading.get_ident()
    finally:
        await database.dispose()


async def test_a_writer_waits_for_another_process_without_stopping_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    database = Database(f"sqlite+aiosqlite:///{path}")
    async with database.transaction() as conn:
        await conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    other = sqlite3.connect(path, isolation_level=None)  # `score replay`, say
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    asyncio.get_running_loop().call_later(0.5, lambda: other.execute("COMMIT"))
    started = time.monotonic()
    try:
        async with database.transaction() as conn:
            await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        waited = time.monotonic() - started
        async with database.transaction(write=False) as conn:
            assert (await conn.execute(sa.text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        ticker.cancel()
        other.close()
        await database.dispose()
    assert waited >= 0.45
    # The loop went on meanwhile: a blocked loop would have ticked once or twice.
    assert ticks >= 20


def _event_row(event_id: str, stream_id: str = "enterprise/1") -> dict[str, object]:
    return {
        "event_id": event_id,
        "stream_id": stream_id,
        "version": 1,
        "type": "enterprise_registered.v1",
        "data": {"name": "Tusequis", "workforce": {"women": 3, "men": 2}},
        "metadata": {"source": "/score/bo/enrolment"},
        "occurred_at": dt.datetime(2026, 12, 1, 14, 30, 5, 123456, tzinfo=dt.UTC),
    }


INSERT = Prepared(events.insert().returning(events.c.position))
SELECT = Prepared(
    sa.select(events.c.position, events.c.data, events.c.occurred_at).where(
        events.c.stream_id == sa.bindparam("stream_id")
    )
)


async def test_a_prepared_statement_reads_back_what_sqlalchemy_reads(
    database: Database,
) -> None:
    async with database.transaction() as conn:
        [(position,)] = await INSERT.rows(conn, _event_row("e-1"))
        prepared = await SELECT.rows(conn, {"stream_id": "enterprise/1"})
        by_sqlalchemy = (
            await conn.execute(
                sa.select(events.c.position, events.c.data, events.c.occurred_at).where(
                    events.c.stream_id == "enterprise/1"
                )
            )
        ).all()
    assert prepared == [tuple(row) for row in by_sqlalchemy]
    assert prepared[0][0] == position
    assert prepared[0][1] == {"name": "Tusequis", "workforce": {"women": 3, "men": 2}}
    assert prepared[0][2].replace(tzinfo=dt.UTC) == dt.datetime(
        2026, 12, 1, 14, 30, 5, 123456, tzinfo=dt.UTC
    )


@pytest.mark.postgres
async def test_a_prepared_statement_on_a_lost_connection_says_so_and_the_next_one_works(
    postgres_database: Database,
) -> None:
    with pytest.raises(DBAPIError) as raised:
        async with postgres_database.transaction() as conn:
            await INSERT.rows(conn, _event_row("e-1"))
            backend = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
            async with postgres_database.engine.connect() as other:
                await other.execute(sa.text(f"SELECT pg_terminate_backend({int(backend)})"))
            await SELECT.rows(conn, {"stream_id": "enterprise/1"})
    # A lost connection is an outage (the consumers wait for the database), not a bad event.
    assert raised.value.connection_invalidated
    async with postgres_database.transaction() as conn:
        await INSERT.rows(conn, _event_row("e-2"))
    async with postgres_database.transaction(write=False) as conn:
        assert len(await SELECT.rows(conn, {"stream_id": "enterprise/1"})) == 1


async def test_a_prepared_write_that_breaks_a_constraint_raises_integrity_error(
    database: Database,
) -> None:
    async with database.transaction() as conn:
        await INSERT.rows(conn, _event_row("e-1"))
    with pytest.raises(IntegrityError):
        async with database.transaction() as conn:
            await INSERT.rows(conn, _event_row("e-1", stream_id="enterprise/2"))
    async with database.transaction(write=False) as conn:
        assert len(await SELECT.rows(conn, {"stream_id": "enterprise/2"})) == 0


async def test_a_prepared_write_runs_once_per_set_of_parameters(database: Database) -> None:
    remember = Prepared(idempotency_keys.insert())
    now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
    async with database.transaction() as conn:
        await remember.run_many(
            conn,
            [
                {
                    "owner": "staff:1",
                    "key": key,
                    "fingerprint": "f",
                    "status_code": 201,
                    "response": {"id": key},
                    "created_at": now,
                }
                for key in ("a", "b", "c")
            ],
        )
        keys = (await conn.execute(sa.select(idempotency_keys.c.key))).scalars().all()
    assert sorted(keys) == ["a", "b", "c"]


async def test_a_prepared_statement_refuses_a_column_default_it_would_not_fill(
    tmp_path: Path,
) -> None:
    # SQLAlchemy fills a column's Python default in at execution; a prepared statement runs
    # without it, so it says so rather than store a NULL.
    table = sa.Table(
        "defaults",
        sa.MetaData(),
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("made_by", sa.String, nullable=True, default="someone"),
    )
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with database.transaction() as conn:
            await conn.run_sync(table.metadata.create_all)
            with pytest.raises(TypeError, match="made_by"):
                await Prepared(table.insert()).rows(conn, {"id": 1})
    finally:
        await database.dispose()


async def test_a_writer_after_a_failed_commit_gets_a_connection_of_its_own(
    tmp_path: Path,
) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        async with database.transaction() as conn:
            await conn.execute(sa.text("CREATE TABLE parent (id INTEGER PRIMARY KEY)"))
            await conn.execute(
                sa.text(
                    "CREATE TABLE child (parent INTEGER REFERENCES parent (id)"
                    " DEFERRABLE INITIALLY DEFERRED)"
                )
            )
        # A deferred constraint fails the COMMIT itself, and SQLite keeps the transaction open.
        with pytest.raises(IntegrityError):
            async with database.transaction() as conn:
                await conn.execute(sa.text("INSERT INTO child VALUES (99)"))
        async with database.transaction() as conn:
            await conn.execute(sa.text("INSERT INTO parent VALUES (1)"))
        async with database.transaction(write=False) as conn:
            parents = (await conn.execute(sa.text("SELECT count(*) FROM parent"))).scalar_one()
            children = (await conn.execute(sa.text("SELECT count(*) FROM child"))).scalar_one()
        assert (parents, children) == (1, 0)
    finally:
        await database.dispose()
