"""`score migrate`: bring each service's database to the newest schema, before the services start.

A service migrates its own database at start unless `SCORE_MIGRATE_ON_START=false`; a deploy
that runs several replicas of a service, or that keeps schema changes a step of its own (the
compose file's one-shot `migrate` service), sets that and runs this command first.

Each service's database is the one `--database-url` names (with `--service`), else the one in
`SCORE_<SERVICE>_DATABASE_URL` (`SCORE_ENROLMENT_DATABASE_URL` …), else its SQLite file in the
data folder of `score up`. Running it on a migrated database changes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from score_chassis.database import Database
from score_chassis.migrate import migrate, pending
from score_cli.datadir import database_url
from score_cli.up import DEFAULT_DATA_DIR, SERVICES


@dataclass(frozen=True)
class Outcome:
    """What migrating one service's database did."""

    service: str
    database: str
    """Its URL, the password hidden."""
    applied: list[str]
    """The branch heads it was brought to; empty if it already had them."""
    error: str | None = None


def migrations_of(service: str) -> Path:
    """The service's own Alembic versions, the `MIGRATIONS` of its composition root."""
    module = importlib.import_module(f"score_{service}.main")
    path: Path = module.MIGRATIONS
    return path


def url_of(service: str, *, given: str | None, data_dir: Path) -> str:
    return (
        given
        or os.environ.get(f"SCORE_{service.upper()}_DATABASE_URL")
        or database_url(data_dir, service)
    )


async def migrate_one(service: str, url: str) -> Outcome:
    database = Database(url)
    shown = database.engine.url.render_as_string(hide_password=True)
    locations = [migrations_of(service)]
    try:
        missing = await pending(database, locations)
        if missing:
            await migrate(database, locations)
        return Outcome(service, shown, missing)
    except Exception as error:  # reported per service; the others are still tried
        return Outcome(service, shown, [], error=f"{type(error).__name__}: {error}")
    finally:
        await database.dispose()


async def migrate_all(targets: list[tuple[str, str]]) -> list[Outcome]:
    # One after the other: each on its own database, and a failure is easier to read alone.
    return [await migrate_one(service, url) for service, url in targets]


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "migrate",
        help="bring each service's database to the newest schema",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    installed = [s.name for s in SERVICES if s.installed]
    parser.add_argument("--service", choices=installed, help="only this service (default: all)")
    parser.add_argument(
        "--database-url", help="the service's database (with --service), a SQLAlchemy async URL"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="where `score up` keeps the SQLite databases (default: .score)",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per service")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.database_url and not args.service:
        print("score migrate: --database-url needs --service", file=sys.stderr)
        return 2
    services = [args.service] if args.service else [s.name for s in SERVICES if s.installed]
    targets = [
        (name, url_of(name, given=args.database_url, data_dir=args.data_dir)) for name in services
    ]
    outcomes = asyncio.run(migrate_all(targets))
    for outcome in outcomes:
        if args.json:
            print(json.dumps(outcome.__dict__))
        elif outcome.error:
            print(f"{outcome.service}: failed on {outcome.database}: {outcome.error}")
        elif outcome.applied:
            print(f"{outcome.service}: migrated {outcome.database} to {', '.join(outcome.applied)}")
        else:
            print(f"{outcome.service}: {outcome.database} is up to date")
    return 1 if any(o.error for o in outcomes) else 0
