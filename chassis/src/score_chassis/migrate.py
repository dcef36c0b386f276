"""Schema migrations with Alembic: the chassis' tables on branch `chassis`, each service's
own tables on a branch of its own in its package's `migrations/` folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

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


class NotMigrated(RuntimeError):
    """The database lacks revisions this code needs, and the service was told not to migrate."""


async def pending(database: Database, version_locations: list[Path]) -> list[str]:
    """The newest revisions of the code's branches that the database has not reached: empty
    when it is migrated (or ahead, at revisions of a newer release this code does not know)."""
    script = ScriptDirectory.from_config(alembic_config(version_locations))

    def unreached(sync_connection: Any) -> list[str]:
        current = MigrationContext.configure(sync_connection).get_current_heads()
        try:
            reached = {r.revision for r in script.iterate_revisions(current, "base") if r}
        except CommandError:  # a revision this code does not know: a newer release migrated
            return []
        return sorted(set(script.get_heads()) - reached)

    async with database.engine.connect() as conn:
        return await conn.run_sync(unreached)


async def check_migrated(database: Database, version_locations: list[Path]) -> None:
    """Raise `NotMigrated`, naming what is missing and what to run, unless it is migrated."""
    missing = await pending(database, version_locations)
    if missing:
        raise NotMigrated(
            f"the database {database.engine.url.render_as_string(hide_password=True)} is not "
            f"migrated (missing {', '.join(missing)}): run `score migrate`, or set "
            "SCORE_MIGRATE_ON_START=true"
        )
