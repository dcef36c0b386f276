"""Database fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL comes from `SCORE_TEST_POSTGRES_URL` (an asyncpg URL to a server where the user
may create databases; each test gets a database of its own, dropped afterwards), or from
testcontainers where a Docker engine answers. With neither, PostgreSQL tests are skipped —
unless `SCORE_REQUIRE_POSTGRES=1`, as CI sets, which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from score_chassis.database import Database
from score_chassis.migrate import migrate

BACKENDS = ("sqlite", "postgres")


def _docker_postgres() -> Iterator[str | None]:
    try:
        from testcontainers.community.postgres import PostgresContainer
    except ImportError:
        yield None
        return
    try:
        container = PostgresContainer("postgres:16-alpine", driver="asyncpg")
        container.start()
    except Exception:  # no Docker engine here
        yield None
        return
    try:
        yield container.get_connection_url()
    finally:
        container.stop()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str | None]:
    """The URL of a PostgreSQL server for tests, or None where there is none."""
    url = os.environ.get("SCORE_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    yield from _docker_postgres()


async def _fresh_postgres_database(server_url: str) -> tuple[str, str]:
    name = f"score_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False), name


async def _drop_postgres_database(server_url: str, name: str) -> None:
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


def require_postgres(server_url: str | None) -> str:
    if server_url:
        return server_url
    if os.environ.get("SCORE_REQUIRE_POSTGRES") == "1":
        pytest.fail("SCORE_REQUIRE_POSTGRES=1 but no SCORE_TEST_POSTGRES_URL and no Docker")
    pytest.skip("no PostgreSQL: set SCORE_TEST_POSTGRES_URL")


@pytest.fixture(params=BACKENDS)
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server_url: str | None
) -> AsyncIterator[str]:
    """An empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
        return
    server = require_postgres(postgres_server_url)
    url, name = await _fresh_postgres_database(server)
    try:
        yield url
    finally:
        await _drop_postgres_database(server, name)


async def _migrated(url: str) -> AsyncIterator[Database]:
    db = Database(url)
    await migrate(db, [])
    try:
        yield db
    finally:
        await db.dispose()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """A migrated chassis database (events, outbox, inbox, dead letters), on each backend."""
    async for db in _migrated(database_url):
        yield db


@pytest.fixture
async def postgres_url(postgres_server_url: str | None) -> AsyncIterator[str]:
    """An empty PostgreSQL database of the test's own."""
    server = require_postgres(postgres_server_url)
    url, name = await _fresh_postgres_database(server)
    try:
        yield url
    finally:
        await _drop_postgres_database(server, name)


@pytest.fixture
async def postgres_database(postgres_url: str) -> AsyncIterator[Database]:
    """A migrated chassis database on PostgreSQL only, for what only PostgreSQL can show."""
    async for db in _migrated(postgres_url):
        yield db


@asynccontextmanager
async def postgres_databases(server_url: str, *names: str) -> AsyncIterator[dict[str, str]]:
    """An empty PostgreSQL database per name (a service's, say), dropped on leaving: their
    URLs by name."""
    made: dict[str, tuple[str, str]] = {}
    try:
        for name in names:
            made[name] = await _fresh_postgres_database(server_url)
        yield {name: url for name, (url, _) in made.items()}
    finally:
        for _, database in made.values():
            await _drop_postgres_database(server_url, database)
