"""Beyond one machine (issue 13): a three-node NATS cluster on loopback, the streams on all
three nodes (R3), enrolment and indicators as processes on PostgreSQL, given every node's URL.
Under a load of enterprises registered, enrolled and trained over HTTP, the node leading the
enrolment stream is killed with SIGKILL, the load goes on, and the node is started again.

Afterwards, as a user would check it: every command the service acknowledged (2xx) is an
event in its store and exactly once in the stream (read with plain nats-py), and the
indicators count exactly the acknowledged facts — nothing lost, nothing counted twice. Then
the broker loses the stream, and `score republish` re-drives it from the store, on three nodes.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import (
    ENROLLED,
    PER_TRAINING,
    REGISTERED,
    TRAINED,
    Broker,
    Load,
    Service,
    drive,
    eventually,
    indicators_of,
    kill,
    start_broker,
    stop_broker,
    store_events,
    wait_for_stream_quorum,
)

pytestmark = [pytest.mark.nats, pytest.mark.postgres, pytest.mark.e2e]

ENROLMENT_STREAM = "SCORE_ENROLMENT"
NODES = 3
DURABLE = "indicators-projection-enrolment"
CONSUMED = "score_events_consumed_total"


async def _kill_the_leader_and_bring_it_back(
    broker: Broker, load: Load, *, kill_at: int, restart_at: int, driving: asyncio.Task[None]
) -> None:
    """SIGKILL the enrolment stream's leader once `kill_at` enterprises are trained, start it
    again once `restart_at` are, while the load goes on.

    Whether the enrolment service notices depends on where it is: connected to another node,
    with no publish waiting for the old leader, it only waits for the new one to be elected.
    What it must do either way is go on answering, and lose and repeat nothing."""

    async def trained(count: int) -> bool:
        if driving.done():
            driving.result()  # the load failed: say how
            pytest.fail(f"the load ended before {count} enterprises were trained")
        return len(load.trained) >= count

    await eventually(lambda: trained(kill_at), within=300, what=f"{kill_at} trained")
    leader: str = (await broker.stream_info(ENROLMENT_STREAM))["cluster"]["leader"]
    kill(broker.node(leader))
    acknowledged_at_kill = load.acknowledged
    await eventually(lambda: trained(restart_at), within=300, what=f"{restart_at} trained")
    # The services went on answering while the leader was gone, and the load is not over.
    assert load.acknowledged > acknowledged_at_kill and not driving.done()
    await asyncio.to_thread(broker.node(leader).start)


async def scenario(
    tmp_path: Path,
    new_database: Callable[[], Awaitable[str]],
    services: list[Service],
    *,
    enterprises: int,
    kills: int,
) -> None:
    broker = start_broker(tmp_path, nodes=NODES)
    try:
        # Until the nodes have elected JetStream's meta leader, a stream cannot be made. Visits'
        # stream, which indicators read and nothing here produces; enrolment makes its own, on
        # SCORE_STREAM_REPLICAS nodes.
        async def provisioned() -> bool:
            try:
                await broker.provision("visits", replicas=NODES)
            except Exception:
                return False
            return True

        await eventually(provisioned, within=90, what="the streams made on the cluster")
        enrolment = Service(
            "enrolment", await new_database(), broker, tmp_path / "enrolment", replicas=NODES
        )
        indicators = Service(
            "indicators", await new_database(), broker, tmp_path / "indicators", replicas=NODES
        )
        for service in (enrolment, indicators):
            services.append(service)
            service.start()
        await asyncio.gather(enrolment.ready(), indicators.ready())

        load = Load()
        driving = asyncio.create_task(drive([enrolment.url], range(enterprises), load))
        step = enterprises // (2 * kills + 2)
        for round_ in range(kills):
            await _kill_the_leader_and_bring_it_back(
                broker,
                load,
                kill_at=(2 * round_ + 1) * step,
                restart_at=(2 * round_ + 2) * step,
                driving=driving,
            )
            await wait_for_stream_quorum(broker, ENROLMENT_STREAM, NODES)
        await driving
        assert not load.unanswered and not load.refused, (load.unanswered, load.refused)
        assert len(load.trained) == enterprises

        # Every acknowledged command is an event in the store.
        stored = await store_events(enrolment.database_url)
        by_type = Counter(kind for _, kind, _ in stored)
        assert by_type[REGISTERED] == len(load.registered) == enterprises
        assert by_type[ENROLLED] == len(load.enrolled) == enterprises
        assert by_type[TRAINED] == len(load.trained) == enterprises
        registered_streams = {stream for _, kind, stream in stored if kind == REGISTERED}
        assert {f"enterprise/{e}" for e in load.registered} == registered_streams

        # ... and exactly once in the stream, once the relay has published the outbox.
        async def published() -> bool:
            async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
                ready = (await client.get(f"{enrolment.url}/readyz")).json()
            return bool(ready["checks"]["outbox_pending"] == 0)

        await eventually(published, within=120, what="the enrolment outbox empty")
        info = await wait_for_stream_quorum(broker, ENROLMENT_STREAM, NODES)
        assert info["config"]["num_replicas"] == NODES
        in_stream = Counter(await broker.ids_in(ENROLMENT_STREAM))
        assert [i for i, times in in_stream.items() if times > 1] == []
        assert set(in_stream) == {event_id for event_id, _, _ in stored}
        assert info["state"]["messages"] == len(stored)

        # The indicators count exactly the acknowledged facts.
        expected = {
            "enterprises_registered": enterprises,
            "enterprises_enrolled": enterprises,
            "enterprises_trained": enterprises,
            "participants_trained": enterprises * PER_TRAINING,
        }

        async def counted() -> dict[str, int] | None:
            figures = await indicators_of(indicators.url)
            if figures is None:
                return None
            now = {key: figures[key] for key in expected}
            return now if now == expected else None

        await eventually(counted, within=180, what=f"the indicators counting {expected}")
        await _the_lost_stream_re_driven_from_the_store(
            broker, enrolment, indicators, stored, counted
        )
    finally:
        for service in reversed(services):
            service.stop()
        stop_broker(broker)


async def _the_lost_stream_re_driven_from_the_store(
    broker: Broker,
    enrolment: Service,
    indicators: Service,
    stored: list[tuple[str, str, str]],
    counted: Callable[[], Awaitable[dict[str, int] | None]],
) -> None:
    """The broker loses the enrolment stream; `score republish` makes it again on the three
    nodes from the store, each event once, and the indicators, reading it again from its first
    message, count nothing twice."""
    async with broker.operator() as client:
        await client.jetstream().delete_stream(ENROLMENT_STREAM)
    before = await indicators.metric(CONSUMED, consumer=DURABLE, outcome="duplicate")
    code, said = await asyncio.to_thread(
        _score,
        "republish", "enrolment", "--from", "1", "--replicas", str(NODES), "--json",
        "--database-url", enrolment.database_url,
        "--nats-url", broker.url, "--data-dir", str(broker.data_dir),
    )  # fmt: skip
    assert code == 0
    assert (said["count"], said["added"]) == (len(stored), len(stored))
    info = await wait_for_stream_quorum(broker, ENROLMENT_STREAM, NODES)
    assert info["config"]["num_replicas"] == NODES
    assert await broker.ids_in(ENROLMENT_STREAM) == [event_id for event_id, _, _ in stored]

    async def read_again() -> bool:
        now = await indicators.metric(CONSUMED, consumer=DURABLE, outcome="duplicate")
        return now - before >= len(stored)

    await eventually(read_again, within=120, what="the indicators reading the stream again")
    assert await counted() is not None, "the indicators counted a re-driven event twice"


def _score(*argv: str) -> tuple[int, Any]:
    """`score …` run as its own process (its stdout, JSON, parsed), as an operator runs it."""
    done = subprocess.run(
        [sys.executable, "-m", "score_cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.timeout(420)
async def test_a_node_killed_mid_load_loses_nothing_and_counts_nothing_twice(
    tmp_path: Path, new_postgres_database: Callable[[], Awaitable[str]], services: list[Service]
) -> None:
    await scenario(tmp_path, new_postgres_database, services, enterprises=120, kills=1)


@pytest.mark.soak
@pytest.mark.timeout(1800)
async def test_the_leader_killed_twice_under_a_long_load(
    tmp_path: Path, new_postgres_database: Callable[[], Awaitable[str]], services: list[Service]
) -> None:
    await scenario(tmp_path, new_postgres_database, services, enterprises=1200, kills=2)
