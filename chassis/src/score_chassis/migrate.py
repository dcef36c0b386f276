"""Schema migrations with Alembic: the chassis' tables on branch `chassis`, each service's
own tables on a branch of its own in its package's `migrations/` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

from score_chassis.database import Database

CHASSIS_VERSIONS = Path(__file__).parent / "migrations" / "versions"


def alembic_config(version_locations: list[Path]) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    locations = [CHASSIS_VERSIONS, *version_locations]
    config.set_main_option("version_locations", " ".join(str(p) for p in locations))
    config.set_main_option("path_separator", "space")
    return config


async def migrate(database: Database, version_locations: list[Path]) -> None:
    """Bring the database to the newest revision of every branch."""
    config = alembic_config(version_locations)

    def upgrade(sync_connection: Any) -> None:
        config.attributes["connection"] = sync_connection
        command.upgrade(config, "heads")

    async with database.engine.connect() as conn:
        if database.is_sqlite:
            await conn.execution_options(score_begin="IMMEDIATE")
        await conn.run_sync(upgrade)
        await conn.commit()
