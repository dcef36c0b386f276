"""Scenario 3, broker data loss: what Jepsen found NATS 2.12.1 can do under power loss, at
its worst — nats-server dies mid-load and comes back with no JetStream data at all, while
the services keep running. The stores are the source of truth: `score doctor` says the
stream is behind its store and what to run, `score republish` from the store restores the
stream (every event once), and the indicators' projection rebuilt (`score replay`) counts
exactly what was acknowledged.

The system runs as `score up` runs it, on SQLite, so that the command the doctor names is the
operator's own.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import shutil
import time
from pathlib import Path

import httpx
import pytest

from score_cli.datadir import running_system
from score_cli.doctor import FAIL, diagnose
from score_cli.main import main
from score_cli.up import NATS_SERVER, RestartPolicy, Service
from score_testing.load import EnrolmentLoad, LoadResult
from score_testing.reconcile import (
    Figures,
    indicators_become,
    reconcile_enrolment,
    record,
    stream_ids,
)
from score_testing.streams import wait_for
from score_testing.supervised import SupervisedSystem

pytestmark = [pytest.mark.e2e, pytest.mark.nats]

SERVICES = (Service("enrolment", 1), Service("indicators", 3))
# Long enough a pause before nats-server's restart to take its store away first.
PATIENT = RestartPolicy(first_delay=2.0)
COMMAND = re.compile(r"run `(score republish [^`]+)`")


def _doctor_failures(data_dir: Path) -> list[str]:
    running = running_system(data_dir)
    assert running is not None
    return [message for level, message in diagnose(running, data_dir=data_dir) if level == FAIL]


async def _broker_data_loss(data_dir: Path, *, enterprises: int, variant: str) -> None:
    began = time.monotonic()
    with SupervisedSystem(data_dir, SERVICES, restart_policy=PATIENT) as up:
        headers = up.admin_headers()
        indicators = up.url("indicators")
        load = EnrolmentLoad(up.url("enrolment"), headers, enterprises=enterprises)
        loading = asyncio.create_task(load.run())
        await wait_for(lambda: load.acknowledged >= load.commands // 2, within=600)
        assert not loading.done(), "the load ended before the loss: make it longer"
        up.kill(NATS_SERVER)
        await wait_for(lambda: up.system.nats.returncode is not None, within=30)
        shutil.rmtree(up.system.nats.store_dir / "jetstream")
        await asyncio.to_thread(up.wait_until_back, NATS_SERVER, 1)
        result = await loading
        expected = result.expected_indicators()
        # Every outbox empty first, so that what the doctor finds is the loss, not the lag.
        # (The indicators cannot count everything yet: what their consumer had not read when
        # the broker died is gone from the stream until the republish.)

        async def relays_drained() -> bool:
            return all([await _outbox_pending(up.url(s.name)) == 0 for s in SERVICES])

        await wait_for(relays_drained, within=60)

        async def doctor_names_the_repairs() -> list[str]:
            # A stream not made again yet is "missing", with no command: the producer's relay
            # makes it at its next publish, and the doctor then names what to republish.
            failures = await asyncio.to_thread(_doctor_failures, data_dir)
            return failures if all(COMMAND.search(f) for f in failures) else []

        failures = await wait_for(doctor_names_the_repairs, within=90)
        commands = [m.group(1) for f in failures if (m := COMMAND.search(f))]
        # Each producer's stream lost what its store published: enrolment's events, and the
        # milestones the indicators had announced before the loss, if any.
        assert "enrolment" in [c.split()[2] for c in commands], failures
        for command in commands:
            assert await asyncio.to_thread(main, shlex.split(command)[1:]) == 0
        assert await asyncio.to_thread(_doctor_failures, data_dir) == []
        # The republished events reach the consumers too: the live view is exact again...
        repaired = await indicators_become(indicators, headers, expected, within=120)
        assert {key: repaired[key] for key in expected} == expected
        # ... and so is one rebuilt from the restored stream.
        replay = ["replay", "indicators-projection", "--data-dir", str(data_dir)]
        assert await asyncio.to_thread(main, replay) == 0
        rebuilt = await indicators_become(indicators, headers, expected, within=60)
        found = await reconcile_enrolment(
            result,
            database_url=up.system.database_url(SERVICES[0]),
            nats_url=up.nats_url,
            indicators_url=indicators,
            headers=headers,
        )

    record(
        Figures(
            scenario="broker data loss",
            variant=variant,
            commands=len(result.acknowledged),
            events=found.store.held,
            kills=1,
            lost=found.lost,
            double_counted=found.double_counted,
            seconds=round(time.monotonic() - began, 1),
            details={**found.as_details(), "doctor": failures, "republished": commands},
        )
    )
    assert found.store.held == found.stream.held == load.commands
    assert (found.lost, found.double_counted) == (0, 0), found.as_details()
    assert {key: rebuilt[key] for key in expected} == expected


@pytest.mark.timeout(300)
async def test_a_broker_that_lost_its_data_mid_load_is_restored_from_the_stores(
    tmp_path: Path,
) -> None:
    await _broker_data_loss(tmp_path / "score", enterprises=200, variant="short")


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_a_broker_that_lost_its_data_under_ten_thousand_commands_is_restored(
    tmp_path: Path,
) -> None:
    await _broker_data_loss(tmp_path / "score", enterprises=3334, variant="10,002 commands")


@pytest.mark.timeout(180)
async def test_a_producer_makes_its_stream_again_when_the_broker_comes_back_without_it(
    tmp_path: Path,
) -> None:
    """Enrolment alone, so that no consumer of its stream makes the stream for it: what it
    appends after the broker came back empty still reaches a stream, without an operator."""
    with SupervisedSystem(tmp_path / "score", SERVICES[:1], restart_policy=PATIENT) as up:
        headers = up.admin_headers()
        url = up.url("enrolment")

        async def drained() -> bool:
            return await _outbox_pending(url) == 0

        before = await EnrolmentLoad(url, headers, enterprises=5).run()
        await wait_for(drained, within=60)  # all of it published, then lost
        up.kill(NATS_SERVER)
        await wait_for(lambda: up.system.nats.returncode is not None, within=30)
        shutil.rmtree(up.system.nats.store_dir / "jetstream")
        await asyncio.to_thread(up.wait_until_back, NATS_SERVER, 1)
        after = await EnrolmentLoad(url, headers, enterprises=5, first=5).run()

        async def published_since_the_loss() -> int:
            return sum((await stream_ids(up.nats_url, "SCORE_ENROLMENT")).values())

        await wait_for(published_since_the_loss, within=60)
        await wait_for(drained, within=60)
        assert await published_since_the_loss() == len(after.acknowledged)
    assert len(before.acknowledged) == len(after.acknowledged) == 15


async def _outbox_pending(url: str) -> int | None:
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        checks = (await client.get(f"{url}/readyz")).json()["checks"]
    pending: int | None = checks["outbox_pending"]
    return pending


@pytest.mark.timeout(300)
async def test_a_broker_restored_from_an_older_copy_is_repaired_from_where_it_ends(
    tmp_path: Path,
) -> None:
    """The other loss a power cut can cause: the broker comes back with an older state of its
    store, the streams' tails (and the consumers' positions) gone. The relays publish on
    after the restored end, the doctor names where the stream stops holding the store, and the
    republish fills it in: every event on its stream once, counted once."""
    data_dir = tmp_path / "score"
    began = time.monotonic()
    with SupervisedSystem(data_dir, SERVICES, restart_policy=PATIENT) as up:
        headers, url = up.admin_headers(), up.url("enrolment")
        store = up.system.nats.store_dir / "jetstream"
        older = tmp_path / "older-jetstream"

        async def drained() -> bool:
            return await _outbox_pending(url) == 0

        async def load(first: int) -> LoadResult:
            done = await EnrolmentLoad(url, headers, enterprises=50, first=first).run()
            await wait_for(drained, within=60)
            return done

        async def broker_restarted(restart: int, replace_store: bool) -> None:
            up.kill(NATS_SERVER)
            await wait_for(lambda: up.system.nats.returncode is not None, within=30)
            if replace_store:
                shutil.rmtree(store)
                shutil.copytree(older, store)
            else:
                shutil.copytree(store, older)
            await asyncio.to_thread(up.wait_until_back, NATS_SERVER, restart)

        first = await load(0)
        await broker_restarted(1, replace_store=False)  # the copy the broker will go back to
        lost_tail = await load(50)
        await broker_restarted(2, replace_store=True)  # ... now
        after = await load(100)
        result = LoadResult(first.acknowledged + lost_tail.acknowledged + after.acknowledged)

        async def relays_drained() -> bool:
            # What was appended after the restore reaches the restored streams by itself.
            return all([await _outbox_pending(up.url(s.name)) == 0 for s in SERVICES])

        await wait_for(relays_drained, within=60)

        async def doctor_names_the_repairs() -> list[str]:
            failures = await asyncio.to_thread(_doctor_failures, data_dir)
            return failures if all(COMMAND.search(f) for f in failures) else []

        failures = await wait_for(doctor_names_the_repairs, within=90)
        commands = [m.group(1) for f in failures if (m := COMMAND.search(f))]
        assert any(c.startswith("score republish enrolment --from ") for c in commands), failures
        for command in commands:
            assert await asyncio.to_thread(main, shlex.split(command)[1:]) == 0
        assert await asyncio.to_thread(_doctor_failures, data_dir) == []
        found = await reconcile_enrolment(
            result,
            database_url=up.system.database_url(SERVICES[0]),
            nats_url=up.nats_url,
            indicators_url=up.url("indicators"),
            headers=headers,
        )
    record(
        Figures(
            scenario="broker data loss",
            variant="short, an older copy of the store",
            commands=len(result.acknowledged),
            events=found.store.held,
            kills=2,
            lost=found.lost,
            double_counted=found.double_counted,
            seconds=round(time.monotonic() - began, 1),
            details={**found.as_details(), "doctor": failures},
        )
    )
    assert found.store.held == found.stream.held == len(result.acknowledged) == 450
    assert (found.lost, found.double_counted) == (0, 0), found.as_details()
