"""The chassis migrations build the tables the code queries through, on both databases."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from score_chassis.database import Database
from score_chassis.migrate import migrate
from score_chassis.tables import metadata


def _columns(sync_conn: Any) -> dict[str, set[str]]:
    inspector = sa.inspect(sync_conn)
    return {
        table: {column["name"] for column in inspector.get_columns(table)}
        for table in inspector.get_table_names()
    }


async def test_migrations_build_every_table_of_the_chassis(database: Database) -> None:
    async with database.engine.connect() as conn:
        columns = await conn.run_sync(_columns)
    for table in metadata.tables.values():
        assert columns.get(table.name) == {c.name for c in table.columns}, table.name


async def test_the_relay_checkpoints_exist_after_migrating(database: Database) -> None:
    async with database.engine.connect() as conn:
        columns = await conn.run_sync(_columns)
    assert columns["relay_checkpoints"] == {"stream", "stream_sequence", "stream_created"}


async def test_migrating_again_changes_nothing(database: Database) -> None:
    await migrate(database, [])
    async with database.transaction(write=False) as conn:
        versions = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).all()
    assert [v for (v,) in versions] == ["chassis_0007"]
