from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from score_chassis.database import Database
from score_chassis.migrate import migrate
from score_indicators.main import MIGRATIONS


@pytest.fixture
async def projection_db(database_url: str) -> AsyncIterator[Database]:
    """The indicators service's database, migrated, on SQLite and on PostgreSQL."""
    db = Database(database_url)
    await migrate(db, [MIGRATIONS])
    try:
        yield db
    finally:
        await db.dispose()
