from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from score_chassis.database import Database
from score_chassis.migrate import migrate
from score_contracts.events import Event
from score_contracts.examples import example_envelope
from score_testing.nats import free_port
from score_testing.service import TEST_SECRET, serving
from score_visits import views
from score_visits.main import MIGRATIONS, build_app
from score_visits.settings import VisitsSettings
from score_visits.tables import VIEWS

Snapshot = dict[str, list[tuple[Any, ...]]]


def settings(tmp_path: Path, nats_url: str | None = None) -> VisitsSettings:
    return VisitsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'visits.db'}",
        nats_url=nats_url or f"nats://127.0.0.1:{free_port()}",
        auth_secret=TEST_SECRET,
        log_format="console",
    )


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    """The visits app on SQLite; NATS is absent, so its views change only by `learn`."""
    return build_app(settings(tmp_path))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(app) as client:
        yield client


@pytest.fixture
def learn(app: FastAPI, client: httpx.AsyncClient) -> Callable[..., Awaitable[None]]:
    """Project enrolment events into the running app's views, as its consumer would."""

    async def learn(*events: Event) -> None:
        async with app.state.runtime.database.transaction() as conn:
            for event in events:
                await views.project(conn, example_envelope(event))

    return learn


@pytest.fixture
async def views_database(database_url: str) -> AsyncIterator[Database]:
    """A database with the visits service's tables, on SQLite and on PostgreSQL."""
    database = Database(database_url)
    await migrate(database, [MIGRATIONS])
    try:
        yield database
    finally:
        await database.dispose()


async def snapshot_views(database: Database) -> Snapshot:
    """Every row of the views, sorted: two views are the same when their snapshots are."""
    out: Snapshot = {}
    async with database.transaction(write=False) as conn:
        for table in VIEWS:
            rows = await conn.execute(sa.select(table))
            out[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return out


@pytest.fixture
def snapshot() -> Callable[[Database], Awaitable[Snapshot]]:
    return snapshot_views
