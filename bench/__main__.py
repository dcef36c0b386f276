"""`make bench`: throughput of the parts every event passes through, on this machine.

Each row runs against the real thing — SQLite file, the PostgreSQL server named by
SCORE_TEST_POSTGRES_URL (skipped without it), a nats-server started here — and prints
events per second. Figures vary by machine; compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from score_chassis import store
from score_chassis.consumer import IdempotentConsumer, Subscription
from score_chassis.database import Database
from score_chassis.jetstream import NatsConnection, ensure_stream
from score_chassis.migrate import migrate
from score_chassis.relay import OutboxRelay
from score_chassis.store import NewEvent
from score_cli.nats_server import NatsServer
from score_contracts.events import EnterpriseRegistered, Headcount
from score_contracts.subjects import STREAMS, subject_for
from score_enrolment.main import build_app as build_enrolment
from score_enrolment.settings import EnrolmentSettings
from score_indicators.main import MIGRATIONS
from score_indicators.projection import project
from score_testing.service import TEST_SECRET, bearer, serving

SOURCE = "/score/bo/enrolment"


def registered(n: int) -> NewEvent:
    event = EnterpriseRegistered(
        enterprise_id=f"bench-{n}",
        name="Bench",
        tax_id=str(n),
        country="bo",
        region="la_paz",
        sector="manufacturing",
        chamber="CNI",
        workforce=Headcount(women=50, men=50),
        registered_on=dt.date(2017, 1, 1),
    )
    return NewEvent(event, subject_for(event, "bo", "la_paz"))


async def append_commands(database: Database, count: int) -> float:
    """One command per transaction, as the API appends: events per second."""
    started = time.perf_counter()
    for n in range(count):
        async with database.transaction() as conn:
            await store.load(conn, f"enterprise/bench-{n}")
            await store.append(conn, f"enterprise/bench-{n}", 0, [registered(n)], source=SOURCE)
    return count / (time.perf_counter() - started)


async def relay_backlog(database: Database, nats: NatsConnection, count: int) -> float:
    relay = OutboxRelay(database, nats, batch_size=500)
    started = time.perf_counter()
    while await relay.publish_pending():
        pass
    return count / (time.perf_counter() - started)


async def consume_stream(database: Database, nats: NatsConnection, count: int) -> float:
    consumer = IdempotentConsumer(
        Subscription("bench-indicators", STREAMS["enrolment"], project), database, nats
    )
    started = time.perf_counter()
    consumer.start()
    while True:
        async with database.transaction(write=False) as conn:
            done = (
                await conn.execute(
                    sa.text("SELECT count(*) FROM inbox WHERE consumer = 'bench-indicators'")
                )
            ).scalar_one()
        if done >= count:
            break
        await asyncio.sleep(0.05)
    elapsed = time.perf_counter() - started
    await consumer.stop()
    return count / elapsed


async def http_registrations(url: str, nats_url: str, count: int) -> float:
    """`POST /v1/enterprises` through the whole app in-process (no network): requests/s."""
    settings = EnrolmentSettings(database_url=url, nats_url=nats_url, auth_secret=TEST_SECRET)
    body = {
        "name": "Bench",
        "tax_id": "0",
        "region": "oruro",
        "sector": "manufacturing",
        "chamber": "CNI",
        "workforce": {"women": 50, "men": 50},
    }
    async with serving(build_enrolment(settings)) as client:
        started = time.perf_counter()
        for n in range(count):
            response = await client.post(
                "/v1/enterprises", json={**body, "tax_id": f"{n}"}, headers=bearer("staff")
            )
            assert response.status_code == 201, response.text
        return count / (time.perf_counter() - started)


async def fresh_postgres(server: str) -> str:
    name = f"score_bench_{uuid.uuid4().hex[:8]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return server.rsplit("/", 1)[0] + f"/{name}"


async def run(count: int) -> list[tuple[str, str, float]]:
    rows: list[tuple[str, str, float]] = []
    workdir = Path(tempfile.mkdtemp(prefix="score-bench-"))
    backends = {"sqlite": f"sqlite+aiosqlite:///{workdir / 'bench.db'}"}
    if server := os.environ.get("SCORE_TEST_POSTGRES_URL"):
        backends["postgres"] = await fresh_postgres(server)
    with NatsServer(workdir / "nats") as server_:
        for backend, url in backends.items():
            database = Database(url)
            await migrate(database, [MIGRATIONS])
            nats = NatsConnection(server_.url, name="bench")
            nats.start()
            await nats.ready.wait()
            js = nats.jetstream
            try:
                await js.delete_stream(STREAMS["enrolment"].name)
            except Exception:
                pass
            await ensure_stream(js, STREAMS["enrolment"])
            rows += [
                (
                    backend,
                    "append (1 command = 1 transaction)",
                    await append_commands(database, count),
                ),
                (backend, "relay outbox → JetStream", await relay_backlog(database, nats, count)),
                (
                    backend,
                    "consume into indicators projection",
                    await consume_stream(database, nats, count),
                ),
            ]
            await nats.close()
            await database.dispose()
            rows.append(
                (
                    backend,
                    "HTTP register enterprise (in-process)",
                    await http_registrations(
                        await _empty(backend, workdir), server_.url, count // 3
                    ),
                )
            )
    return rows


async def _empty(backend: str, workdir: Path) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'http.db'}"
    return await fresh_postgres(os.environ["SCORE_TEST_POSTGRES_URL"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    rows = asyncio.run(run(args.events))
    print(f"\n{args.events} events each (HTTP: a third as many requests)\n")
    print(f"{'backend':<10} {'step':<40} {'per second':>10}")
    for backend, name, rate in rows:
        print(f"{backend:<10} {name:<40} {rate:>10,.0f}")


if __name__ == "__main__":
    main()
