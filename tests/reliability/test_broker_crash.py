"""Scenario 1, the broker crash: nats-server is killed (SIGKILL) twice under a load of
commands and `score up`'s supervisor brings it back on the same port and store. Afterwards
the commands acknowledged, the events in the store, the events in JetStream and what the
indicators count are the same, by id: none lost, none counted twice.

The services run as `score up` runs them, on PostgreSQL; the short variant is in the suite,
the long one (10,002 commands) behind `make soak`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from score_cli.up import NATS_SERVER, Service
from score_testing.databases import postgres_databases, require_postgres
from score_testing.load import EnrolmentLoad
from score_testing.reconcile import Figures, reconcile_enrolment, record
from score_testing.streams import wait_for
from score_testing.supervised import SupervisedSystem

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.nats]

SERVICES = (Service("enrolment", 1), Service("indicators", 3))
KILLS = 2


async def _broker_crash(
    data_dir: Path,
    server_url: str | None,
    *,
    enterprises: int,
    variant: str,
    rate: float | None = None,
) -> None:
    began = time.monotonic()
    server = require_postgres(server_url)
    async with postgres_databases(server, "enrolment", "indicators") as databases:
        environment = {name: {"SCORE_DATABASE_URL": url} for name, url in databases.items()}
        with SupervisedSystem(data_dir, SERVICES, environment=environment) as up:
            headers = up.admin_headers()
            load = EnrolmentLoad(up.url("enrolment"), headers, enterprises=enterprises, rate=rate)
            loading = asyncio.create_task(load.run())
            for kill in range(1, KILLS + 1):
                # Kill well inside the load: at a third of it, and at two thirds.
                due = load.commands * kill // (KILLS + 1)
                await wait_for(lambda due=due: load.acknowledged >= due, within=600)
                assert not loading.done(), "the load ended before the kill: make it longer"
                up.kill(NATS_SERVER)
                await asyncio.to_thread(up.wait_until_back, NATS_SERVER, kill)
            result = await loading

            found = await reconcile_enrolment(
                result,
                database_url=databases["enrolment"],
                indicators_database_url=databases["indicators"],
                nats_url=up.nats_url,
                indicators_url=up.url("indicators"),
                headers=headers,
            )
            said_back = up.has_said("nats-server is running again")
            kills = up.kills[NATS_SERVER]

    record(
        Figures(
            scenario="broker crash",
            variant=variant,
            commands=len(result.acknowledged),
            events=found.store.held,
            kills=kills,
            lost=found.lost,
            double_counted=found.double_counted,
            seconds=round(time.monotonic() - began, 1),
            details={**found.as_details(), "sent_again": result.attempts_again},
        )
    )
    assert said_back
    assert len(result.acknowledged) == load.commands
    assert found.store.held == found.store.acknowledged == load.commands
    assert found.stream.held == found.stream.acknowledged == load.commands
    assert found.handled is not None and found.handled.held == load.commands
    assert (found.lost, found.double_counted) == (0, 0), found.as_details()
    assert found.indicators == dict.fromkeys(found.indicators, 0)


@pytest.mark.timeout(300)
async def test_two_broker_kills_under_load_lose_and_double_count_nothing(
    tmp_path: Path, postgres_server_url: str | None
) -> None:
    # 750 commands over 10 s at least: each kill and restart well inside the load.
    await _broker_crash(
        tmp_path / "score", postgres_server_url, enterprises=250, variant="short", rate=75
    )


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_two_broker_kills_under_ten_thousand_commands_lose_and_double_count_nothing(
    tmp_path: Path, postgres_server_url: str | None
) -> None:
    await _broker_crash(
        tmp_path / "score", postgres_server_url, enterprises=3334, variant="10,002 commands"
    )
