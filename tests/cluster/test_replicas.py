"""Two replicas of enrolment on one PostgreSQL database and two of indicators on another, one
nats-server, a load spread over both enrolment replicas (issue 13).

What an operator can check: one relay publishes at a time (one replica says it leads, the
other has published nothing; every stored event is in the stream once, no id twice); the two
indicator replicas share one durable consumer and both take messages from it; the counts are
exact — also after one replica of each is killed with SIGKILL mid-load, the surviving
enrolment replica taking over the relay and the surviving indicators replica the messages the
killed one had fetched and not acknowledged.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from .conftest import (
    ENROLLED,
    PER_TRAINING,
    REGISTERED,
    TRAINED,
    Load,
    Service,
    drive,
    eventually,
    indicators_of,
    start_broker,
    stop_broker,
    store_events,
)

pytestmark = [pytest.mark.nats, pytest.mark.postgres, pytest.mark.e2e]

ENROLMENT_STREAM = "SCORE_ENROLMENT"
DURABLE = "indicators-projection-enrolment"
PUBLISHED = "score_events_published_total"
CONSUMED = "score_events_consumed_total"
# A message fetched by a replica that is then killed comes again after the ack wait: kept
# short here so that the test need not wait out the default 30 s.
SETTINGS = {"SCORE_CONSUMER_ACK_WAIT_SECONDS": "5"}


async def consumed(service: Service) -> float:
    return await service.metric(CONSUMED, consumer=DURABLE, outcome="handled")


async def scenario(
    tmp_path: Path,
    new_database: Callable[[], Awaitable[str]],
    services: list[Service],
    *,
    enterprises: int,
) -> None:
    broker = start_broker(tmp_path, nodes=1)
    try:
        await broker.provision("visits", replicas=1)  # indicators read it; no producer here
        enrolment_db, indicators_db = await new_database(), await new_database()
        enrolment = [
            Service("enrolment", enrolment_db, broker, tmp_path, 1, label=f"enrolment-{r}",
                    environment=SETTINGS)
            for r in "ab"
        ]  # fmt: skip
        indicators = [
            Service("indicators", indicators_db, broker, tmp_path, 1, label=f"indicators-{r}",
                    environment=SETTINGS)
            for r in "ab"
        ]  # fmt: skip
        # The first replica of each migrates its database; the second finds it migrated.
        for pair in zip(enrolment, indicators, strict=True):
            for service in pair:
                services.append(service)
                service.start()
            await asyncio.gather(*(service.ready() for service in pair))
        await eventually(
            lambda: all(
                any(line.get("consumer") == DURABLE for line in s.log_events("consumer.started"))
                for s in indicators
            ),
            within=60,
            what=f"both indicator replicas reading {DURABLE}",
        )

        # The load, over both enrolment replicas.
        load = Load()
        targets = [s.url for s in enrolment]
        driving = asyncio.create_task(drive(targets, range(enterprises), load))

        async def trained(count: int) -> bool:
            if driving.done():
                driving.result()
                pytest.fail(f"the load ended before {count} enterprises were trained")
            return len(load.trained) >= count

        await eventually(lambda: trained(enterprises // 3), within=300, what="a third trained")

        # One relay publishes: the replica that leads says so, the other has published nothing.
        leaders = [s for s in enrolment if s.log_events("relay.leader")]
        assert len(leaders) == 1, [s.label for s in leaders]
        leader = leaders[0]
        follower = next(s for s in enrolment if s is not leader)
        assert await leader.metric(PUBLISHED) > 0
        assert await follower.metric(PUBLISHED) == 0
        # Both enrolment replicas took writes, and both indicator replicas take messages from
        # the one durable consumer.
        assert all(s.log_events("command.handled") for s in enrolment)
        await eventually(
            lambda: _all_positive([consumed(s) for s in indicators]),
            within=60,
            what="both indicator replicas handling messages of the durable",
        )

        # SIGKILL the relay's leader and one indicators replica, mid-load.
        targets.remove(leader.url)
        leader.kill()
        indicators[0].kill()
        await driving
        assert not load.refused, load.refused
        await eventually(
            lambda: follower.log_events("relay.leader"),
            within=60,
            what="the surviving enrolment replica leading the relay",
        )

        # Every acknowledged command is in the store, whatever replica took it; a request
        # cut by the kill may or may not have been stored.
        stored = await store_events(enrolment_db)
        by_type = Counter(kind for _, kind, _ in stored)
        for kind, acknowledged, step in (
            (REGISTERED, load.registered, "register"),
            (ENROLLED, load.enrolled, "enrol"),
            (TRAINED, load.trained, "train"),
        ):
            assert len(acknowledged) <= by_type[kind] <= len(acknowledged) + load.unanswered[step]
        registered = {stream for _, kind, stream in stored if kind == REGISTERED}
        assert {f"enterprise/{e}" for e in load.registered} <= registered

        # Each stored event in the stream exactly once.
        async def published() -> bool:
            async with httpx.AsyncClient(trust_env=False, timeout=5) as client:
                ready = (await client.get(f"{follower.url}/readyz")).json()
            return bool(ready["checks"]["outbox_pending"] == 0)

        await eventually(published, within=120, what="the enrolment outbox empty")
        assert await follower.metric(PUBLISHED) > 0  # the survivor published after the kill
        in_stream = Counter(await broker.ids_in(ENROLMENT_STREAM))
        assert [i for i, times in in_stream.items() if times > 1] == []
        assert set(in_stream) == {event_id for event_id, _, _ in stored}

        # One durable consumer for both indicator replicas.
        async with broker.operator() as client:
            listed = await client.jetstream().consumers_info(ENROLMENT_STREAM)
        names = [info.name for info in listed]
        assert names.count(DURABLE) == 1 and not [n for n in names if n.startswith(DURABLE + "-")]

        # The indicators count exactly what the store holds: nothing lost with the killed
        # replica's unacknowledged messages, nothing counted twice on their redelivery.
        participants = sum(1 for _, kind, _ in stored if kind == TRAINED) * PER_TRAINING
        expected = {
            "enterprises_registered": by_type[REGISTERED],
            "enterprises_enrolled": by_type[ENROLLED],
            "enterprises_trained": by_type[TRAINED],
            "participants_trained": participants,
        }

        async def counted() -> dict[str, int] | None:
            figures = await indicators_of(indicators[1].url)
            if figures is None:
                return None
            now = {key: figures[key] for key in expected}
            return now if now == expected else None

        await eventually(counted, within=180, what=f"the indicators counting {expected}")
    finally:
        for service in reversed(services):
            service.stop()
        stop_broker(broker)


async def _all_positive(readings: list[Awaitable[float]]) -> bool:
    return all(value > 0 for value in await asyncio.gather(*readings))


@pytest.mark.timeout(420)
async def test_replicas_share_the_relay_and_the_durable_and_count_exactly(
    tmp_path: Path, new_postgres_database: Callable[[], Awaitable[str]], services: list[Service]
) -> None:
    await scenario(tmp_path, new_postgres_database, services, enterprises=120)


@pytest.mark.soak
@pytest.mark.timeout(1800)
async def test_replicas_under_a_long_load(
    tmp_path: Path, new_postgres_database: Callable[[], Awaitable[str]], services: list[Service]
) -> None:
    await scenario(tmp_path, new_postgres_database, services, enterprises=1200)
