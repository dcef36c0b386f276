"""Scenario 2, service crashes: under a load of commands, enrolment (a producer, killed
mid-append and mid-relay), indicators and notifications (consumers, killed mid-batch) are
killed with SIGKILL, in turn and again, and `score up`'s supervisor restarts each with its
backoff and says so while the rest keeps running. Afterwards the counts are exact, every
milestone is listed once, and each is notified once per subscription it concerns (by
`webhook-id`, at a real webhook receiver that verifies the signature).

Enrolment and indicators run on PostgreSQL, notifications on SQLite, as `score up` runs it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from score_cli.sinks import Inbox, WebhookSink
from score_cli.up import Service
from score_testing.chambers import settled_account, subscribe
from score_testing.databases import postgres_databases, require_postgres
from score_testing.load import REGIONS, EnrolmentLoad
from score_testing.reconcile import Figures, reconcile_enrolment, record
from score_testing.streams import wait_for
from score_testing.supervised import SupervisedSystem

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.nats]

SERVICES = (Service("enrolment", 1), Service("indicators", 3), Service("notifications", 4))
VICTIMS = ("enrolment", "indicators", "notifications")
NOTIFICATIONS = {
    "SCORE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    # A call cut by a kill is tried again soon rather than in minutes.
    "SCORE_NOTIFICATIONS_RETRY_SCHEDULE": "1,1,2,2,5,5,10,10,30,30",
    "SCORE_NOTIFICATIONS_LEASE_SECONDS": "5",
    "SCORE_NOTIFICATIONS_TIMEOUT_SECONDS": "5",
}


def _milestones_owed_by(trained: int) -> int:
    """What the programme's milestones make of `trained` enterprises spread over every
    region: each region's first trained enterprise, and every 10 nationally."""
    return len(REGIONS) + trained // 10


async def _service_crashes(
    data_dir: Path,
    server_url: str | None,
    *,
    enterprises: int,
    rounds: int,
    variant: str,
    rate: float | None = None,
) -> None:
    began = time.monotonic()
    server = require_postgres(server_url)
    sink = WebhookSink(Inbox())
    sink.start()
    try:
        async with postgres_databases(server, "enrolment", "indicators") as databases:
            environment = {
                **{name: {"SCORE_DATABASE_URL": url} for name, url in databases.items()},
                "notifications": NOTIFICATIONS,
            }
            with SupervisedSystem(data_dir, SERVICES, environment=environment) as up:
                headers = up.admin_headers()
                notifications, indicators = up.url("notifications"), up.url("indicators")
                subscriptions = [
                    await subscribe(
                        notifications, headers, sink, "cepb", national=True, regions=("la_paz",)
                    ),
                    await subscribe(
                        notifications, headers, sink, "oriente", regions=("santa_cruz", "beni")
                    ),
                ]
                load = EnrolmentLoad(
                    up.url("enrolment"), headers, enterprises=enterprises, rate=rate
                )
                loading = asyncio.create_task(load.run())
                schedule = [victim for _ in range(rounds) for victim in VICTIMS]
                for number, victim in enumerate(schedule, start=1):
                    due = load.commands * number // (len(schedule) + 1)
                    await wait_for(lambda due=due: load.acknowledged >= due, within=600)
                    # Back from its last kill (the others may still be restarting).
                    await asyncio.to_thread(up.wait_until_back, victim, up.kills.get(victim, 0))
                    assert not loading.done(), "the load ended before the kill: make it longer"
                    up.kill(victim)
                result = await loading
                for victim in VICTIMS:
                    await asyncio.to_thread(up.wait_until_back, victim, up.kills[victim])

                found = await reconcile_enrolment(
                    result,
                    database_url=databases["enrolment"],
                    indicators_database_url=databases["indicators"],
                    nats_url=up.nats_url,
                    indicators_url=indicators,
                    headers=headers,
                )
                trained = len(result.of("train"))
                notified = await settled_account(
                    indicators,
                    notifications,
                    headers,
                    subscriptions,
                    sink,
                    expected_milestones=_milestones_owed_by(trained),
                    within=120,
                )
                kills = dict(up.kills)
                said = list(up.said)
    finally:
        sink.stop()

    record(
        Figures(
            scenario="service crashes",
            variant=variant,
            commands=len(result.acknowledged),
            events=found.store.held,
            kills=sum(kills.values()),
            duplicates=sink.inbox.repeats,
            lost=found.lost + notified.missing,
            double_counted=found.double_counted + notified.twice,
            seconds=round(time.monotonic() - began, 1),
            details={
                **found.as_details(),
                "kills": kills,
                "sent_again": result.attempts_again,
                "milestones": len(notified.milestones),
                "notifications_owed": len(notified.owed),
                "notifications_received": len(notified.received),
                "webhooks_received_again": sink.inbox.repeats,
            },
        )
    )
    for victim in VICTIMS:  # each crash said, each restart after a pause, and said
        assert any(f"{victim} was killed by SIGKILL" in line for line in said), said
        for restart in range(1, kills[victim] + 1):
            assert any(
                line.startswith(f"restarting {victim} in ") and f"(restart {restart})" in line
                for line in said
            ), said
            assert f"{victim} is ready again (restart {restart})" in said
    assert (found.lost, found.double_counted) == (0, 0), found.as_details()
    assert found.store.held == found.stream.held == load.commands
    assert found.handled is not None and found.handled.held == load.commands
    assert len(notified.milestones) == _milestones_owed_by(trained)
    assert (notified.missing, notified.twice, notified.failed) == (0, 0, 0)
    assert sink.refused == []


@pytest.mark.timeout(400)
async def test_producer_and_consumers_killed_under_load_count_and_notify_exactly(
    tmp_path: Path, postgres_server_url: str | None
) -> None:
    # 900 commands over 15 s at least: each kill well inside the load.
    await _service_crashes(
        tmp_path / "score",
        postgres_server_url,
        enterprises=300,
        rounds=1,
        variant="short",
        rate=60,
    )


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_repeated_kills_of_every_service_under_load_count_and_notify_exactly(
    tmp_path: Path, postgres_server_url: str | None
) -> None:
    await _service_crashes(
        tmp_path / "score",
        postgres_server_url,
        enterprises=3334,
        rounds=4,
        variant="10,002 commands, 4 rounds",
    )
