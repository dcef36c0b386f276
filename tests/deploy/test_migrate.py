"""`score migrate` brings every service's empty database to the schema its code queries
through, on SQLite and PostgreSQL; run again it changes nothing; and a service told not to
migrate at start leaves its database alone and says that it is not migrated."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from score_chassis import tables as chassis_tables
from score_chassis.database import Database
from score_chassis.migrate import NotMigrated
from score_chassis.runtime import Runtime
from score_cli.main import main
from score_enrolment import enterprise_list
from score_enrolment.main import MIGRATIONS as ENROLMENT_MIGRATIONS
from score_enrolment.settings import EnrolmentSettings
from score_indicators import milestones
from score_indicators import tables as indicators_tables
from score_notifications import tables as notifications_tables
from score_testing.databases import require_postgres
from score_visits import tables as visits_tables

SERVICES = ("enrolment", "visits", "indicators", "notifications")

MODELS: dict[str, list[sa.MetaData]] = {
    "enrolment": [chassis_tables.metadata, enterprise_list.metadata],
    "visits": [chassis_tables.metadata, visits_tables.metadata],
    "indicators": [chassis_tables.metadata, indicators_tables.metadata, milestones.metadata],
    "notifications": [chassis_tables.metadata, notifications_tables.metadata],
}


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def score(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Ran]:
    """`score migrate ARGS` in this process (as the console script calls it), with `env` set."""

    def run(*args: str, env: dict[str, str] | None = None) -> Ran:
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        try:
            code = main(["migrate", *args])
        except SystemExit as exit:  # argparse refusing the arguments
            code = int(exit.code or 0)
        out, err = capsys.readouterr()
        return Ran(code, out, err)

    return run


def _schema(sync_conn: Any) -> dict[str, set[str]]:
    inspector = sa.inspect(sync_conn)
    return {
        table: {column["name"] for column in inspector.get_columns(table)}
        for table in inspector.get_table_names()
    }


async def _state(url: str) -> tuple[dict[str, set[str]], list[str]]:
    database = Database(url)
    try:
        async with database.engine.connect() as conn:
            schema = await conn.run_sync(_schema)
            versions = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            return schema, sorted(v for (v,) in versions)
    finally:
        await database.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
async def urls(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server_url: str | None
) -> AsyncIterator[dict[str, str]]:
    """An empty database for each service, on one engine."""
    if request.param == "sqlite":
        yield {s: f"sqlite+aiosqlite:///{tmp_path / f'{s}.db'}" for s in SERVICES}
        return
    server = require_postgres(postgres_server_url)
    names = {s: f"score_migrate_{s}_{uuid.uuid4().hex[:8]}" for s in SERVICES}
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        for name in names.values():
            await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield {
            s: make_url(server).set(database=n).render_as_string(hide_password=False)
            for s, n in names.items()
        }
    finally:
        async with admin.connect() as conn:
            for name in names.values():
                await conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def test_score_migrate_builds_each_services_schema_and_again_changes_nothing(
    urls: dict[str, str], tmp_path: Path, score: Callable[..., Ran]
) -> None:
    env = {f"SCORE_{s.upper()}_DATABASE_URL": url for s, url in urls.items()}
    first = score("--json", "--data-dir", str(tmp_path / "unused"), env=env)
    assert first.returncode == 0, first.stderr
    outcomes = {o["service"]: o for o in map(json.loads, first.stdout.splitlines())}
    assert set(outcomes) == set(SERVICES)
    before = {}
    for service, url in urls.items():
        assert outcomes[service]["error"] is None
        assert outcomes[service]["applied"], f"{service} was not migrated"
        schema, versions = asyncio.run(_state(url))
        for metadata in MODELS[service]:
            for table in metadata.tables.values():
                assert schema.get(table.name) == {c.name for c in table.columns}, table.name
        before[service] = (schema, versions)

    again = score(env=env)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("is up to date") == len(SERVICES), again.stdout
    for service, url in urls.items():
        assert asyncio.run(_state(url)) == before[service]
    assert not (tmp_path / "unused").exists()


def test_one_service_by_its_url_and_a_url_needs_a_service(
    tmp_path: Path, score: Callable[..., Ran]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'mine.db'}"
    done = score("--service", "enrolment", "--database-url", url)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("enrolment: migrated"), done.stdout
    assert (tmp_path / "mine.db").exists()
    refused = score("--database-url", url)
    assert refused.returncode == 2
    assert "--database-url needs --service" in refused.stderr


async def test_a_service_told_not_to_migrate_leaves_its_database_and_says_so(
    database_url: str,
) -> None:
    settings = EnrolmentSettings(database_url=database_url, migrate_on_start=False)
    runtime = Runtime(settings, context="enrolment", migrations=[ENROLMENT_MIGRATIONS])
    try:
        with pytest.raises(NotMigrated, match=r"is not migrated .*run `score migrate`"):
            await runtime.start()
        async with runtime.database.engine.connect() as conn:
            assert await conn.run_sync(_schema) == {}
    finally:
        await runtime.database.dispose()
