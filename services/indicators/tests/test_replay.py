"""The indicators' projection, rebuilt from both streams that feed it, counts exactly what the
live one did, whatever had happened to it; and while it is being rebuilt the indicators are
never answered from part of the history: a rebuild builds it beside the served one, which goes
on answering, and a fresh database catching up answers 503."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from nats.aio.msg import Msg

from score_chassis.consumer import IdempotentConsumer
from score_chassis.database import Database
from score_chassis.tables import inbox
from score_chassis.view import mark, moved
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    ParticipantsTrained,
    VisitCompleted,
    VisitScheduled,
)
from score_contracts.examples import example, example_envelope
from score_indicators.main import build_app
from score_indicators.projection import PROJECTION, clear
from score_indicators.settings import IndicatorsSettings
from score_indicators.tables import NEXT, trainings, visits
from score_testing.nats import NatsServer
from score_testing.service import TEST_SECRET, bearer, serving
from score_testing.streams import publish_envelopes, wait_for

pytestmark = pytest.mark.nats

ADMIN = bearer("admin")
REPLAY = "/v1/ops/replay/projection"
STORY = [
    (example(EnterpriseRegistered), 1),
    (example(EnterpriseEnrolled), 2),
    (example(ParticipantsTrained), 3),
    (example(VisitScheduled), 1),
    (example(VisitCompleted), 2),
]


def many_enterprises(count: int) -> list[tuple[Event, int]]:
    """`count` enterprises registered, each its first event, after the story."""
    registered = example(EnterpriseRegistered)
    return STORY + [
        (registered.model_copy(update={"enterprise_id": f"ent-{n:05}"}), 1) for n in range(count)
    ]


async def publish(nats_url: str, story: list[tuple[Event, int]]) -> None:
    envelopes = [example_envelope(event, stream_version=version) for event, version in story]
    await publish_envelopes(nats_url, envelopes, region="santa_cruz")


class Gate:
    """Holds every consumer's batches (or, with `beside_only`, those of the consumers building
    the projection beside the served one), before their transaction, until opened: a rebuild
    that cannot finish yet."""

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.open.set()
        self.beside_only = False

    def holds(self, consumer: IdempotentConsumer) -> bool:
        return not self.beside_only or consumer.name.endswith("-beside")


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    gate = Gate()
    handle_batch = IdempotentConsumer.handle_batch

    async def gated(consumer: IdempotentConsumer, messages: Sequence[Msg]) -> None:
        if gate.holds(consumer):
            await gate.open.wait()
        await handle_batch(consumer, messages)

    monkeypatch.setattr(IdempotentConsumer, "handle_batch", gated)
    return gate


ACK_WAIT = 2
"""For the restarts: a message delivered to a consumer stopped before it acknowledged it comes
again after ack_wait (30 s by default); the tests wait for the rebuild, not for that."""


def app_on(
    tmp_path: Path, nats_url: str, database_url: str | None = None, **settings: Any
) -> FastAPI:
    return build_app(
        IndicatorsSettings(
            database_url=database_url or f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}",
            nats_url=nats_url,
            auth_secret=TEST_SECRET,
            log_format="console",
            **settings,
        )
    )


async def indicators(api: httpx.AsyncClient) -> dict[str, Any] | None:
    """The indicators, or None while the projection is being rebuilt."""
    response = await api.get("/v1/indicators", headers=ADMIN)
    if response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    values: dict[str, Any] = response.json()["indicators"]
    return values


def counted(expected: int) -> Callable[[httpx.AsyncClient], Awaitable[dict[str, Any] | None]]:
    async def condition(api: httpx.AsyncClient) -> dict[str, Any] | None:
        values = await indicators(api)
        if values and values["enterprises_registered"] >= expected and values["visits_completed"]:
            return values
        return None

    return condition


async def built(api: httpx.AsyncClient) -> dict[str, Any] | None:
    progress: dict[str, Any] = (await api.get(REPLAY, headers=ADMIN)).json()
    return progress if progress["state"] == "built" and progress["done"] else None


async def under_way(api: httpx.AsyncClient) -> dict[str, Any] | None:
    """The rebuild's progress once it has begun (its rows written)."""
    progress: dict[str, Any] = (await api.get(REPLAY, headers=ADMIN)).json()
    return progress if progress["target"] is not None else None


def assert_rebuilding(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    problem = response.json()
    assert problem["type"].endswith("/problems/rebuilding")
    assert "the indicators' projection is being rebuilt from its streams: " in problem["detail"]
    assert problem["detail"].endswith(" events")


async def test_a_rebuilt_projection_counts_what_the_live_one_did(
    tmp_path: Path, nats_url: str
) -> None:
    await publish(nats_url, STORY)
    app = app_on(tmp_path, nats_url, consumer_ack_wait_seconds=ACK_WAIT)
    async with serving(app) as api:
        live = await wait_for(lambda: counted(1)(api), within=15)
        # Damage the projection, as a bug in a handler would have (in the consumer's
        # transaction, which moves the projection's version): only a rebuild from the streams
        # puts it right.
        async with app.state.runtime.database.transaction() as conn:
            await conn.execute(trainings.delete())
            await conn.execute(visits.delete())
            await moved(conn, PROJECTION, ["indicators-projection-visits"])
        assert (await indicators(api) or {})["enterprises_trained"] == 0

        started = await api.post(REPLAY, headers=ADMIN)
        assert started.status_code == 202, started.text
        assert started.headers["Location"] == REPLAY
        assert started.json()["links"] == {"progress": REPLAY}
        assert started.json()["consumers"] == [
            "indicators-projection-enrolment",
            "indicators-projection-visits",
        ]

        progress = await wait_for(lambda: built(api), within=20)
        assert progress["processed"] == len(STORY)
        assert await indicators(api) == live
        assert (await api.post(REPLAY, headers=bearer("staff"))).status_code == 403


async def test_while_the_projection_is_rebuilt_the_old_figures_are_served_never_fewer(
    tmp_path: Path, nats_url: str, gate: Gate, database_url: str
) -> None:
    await publish(nats_url, many_enterprises(300))
    app = app_on(tmp_path, nats_url, database_url, consumer_ack_wait_seconds=ACK_WAIT)
    async with serving(app) as api:
        live = await wait_for(lambda: counted(301)(api), within=30)
        answers: list[httpx.Response] = []
        stop = asyncio.Event()

        async def keep_reading() -> None:
            while not stop.is_set():
                answers.append(await api.get("/v1/indicators", headers=ADMIN))
                await asyncio.sleep(0.005)

        reader = asyncio.create_task(keep_reading())
        gate.beside_only = True
        gate.open.clear()  # the new projection cannot get far until the gate opens
        started = await api.post(REPLAY, headers=ADMIN)
        assert started.status_code == 202, started.text
        assert started.json()["state"] == "rebuilding" and started.json()["beside"]

        progress = await wait_for(lambda: under_way(api), within=10)
        assert progress["state"] == "rebuilding" and not progress["done"]
        assert progress["target"] == 300 + len(STORY)  # both streams' last sequences
        ready = await api.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert (
            "the indicators' projection is being rebuilt beside the one served"
            in (ready.json()["checks"]["rebuilding"]["projection"])
        )
        assert await indicators(api) == live

        # Meanwhile the programme goes on, and the served projection counts it.
        later = example(EnterpriseRegistered)
        await publish(
            nats_url,
            [(later.model_copy(update={"enterprise_id": f"later-{n}"}), 1) for n in range(20)],
        )
        grown = await wait_for(lambda: counted(321)(api), within=30)
        assert (await api.get(REPLAY, headers=ADMIN)).json()["state"] == "rebuilding"

        gate.open.set()
        await wait_for(lambda: built(api), within=30)
        # And after the switch, more: counted by the new projection's consumers.
        await publish(
            nats_url,
            [(later.model_copy(update={"enterprise_id": f"last-{n}"}), 1) for n in range(5)],
        )
        after = await wait_for(lambda: counted(326)(api), within=30)
        stop.set()
        await reader

    assert after == {**grown, "enterprises_registered": 326}
    registered = []
    for response in answers:
        assert response.status_code == 200, response.text  # never a 503, never a part
        registered.append(response.json()["indicators"]["enterprises_registered"])
    assert registered == sorted(registered)  # never fewer than a moment before
    assert registered[0] == 301 and registered[-1] == 326


async def test_the_replay_request_answers_at_once_and_starts_one_rebuild(
    tmp_path: Path, nats_url: str, gate: Gate
) -> None:
    await publish(nats_url, many_enterprises(2000))
    app = app_on(tmp_path, nats_url)
    async with serving(app) as api:
        live = await wait_for(lambda: counted(2001)(api), within=60)
        gate.open.clear()
        answers = []
        for _ in range(20):
            began = time.perf_counter()
            answer = await api.post(REPLAY, headers=ADMIN)
            answers.append((time.perf_counter() - began, answer))
        for seconds, answer in answers:
            assert answer.status_code == 202, answer.text
            assert seconds < 0.5
            assert answer.headers["Location"] == REPLAY
            assert answer.json()["state"] == "rebuilding"
        # One rebuild, which every answer points at.
        assert len({answer.json()["started_at"] for _, answer in answers}) == 1

        gate.open.set()
        progress = await wait_for(lambda: built(api), within=60)
        assert progress["started_at"] == answers[0][1].json()["started_at"]
        assert await indicators(api) == live
        async with app.state.runtime.database.transaction(write=False) as conn:
            handled = (
                await conn.execute(sa.select(sa.func.count()).select_from(inbox))
            ).scalar_one()
        assert handled == 2000 + len(STORY)


async def test_a_service_restarted_mid_rebuild_serves_the_old_figures_and_finishes_it(
    tmp_path: Path, nats_url: str, gate: Gate
) -> None:
    await publish(nats_url, many_enterprises(200))
    # What the stopped process had been handed and not acknowledged comes again after
    # ack_wait: keep it short.
    async with serving(app_on(tmp_path, nats_url, consumer_ack_wait_seconds=2)) as api:
        live = await wait_for(lambda: counted(201)(api), within=30)
        gate.beside_only = True
        gate.open.clear()
        assert (await api.post(REPLAY, headers=ADMIN)).status_code == 202
        started_at = (await api.get(REPLAY, headers=ADMIN)).json()["started_at"]

    # The process stopped half-way: the next one serves the whole projection it had, and
    # builds the new one on.
    gate.open.set()
    async with serving(app_on(tmp_path, nats_url, consumer_ack_wait_seconds=2)) as api:
        assert await indicators(api) == live
        assert (await api.get("/readyz")).status_code == 200
        progress = (await api.get(REPLAY, headers=ADMIN)).json()
        assert progress["state"] == "rebuilding" and progress["started_at"] == started_at
        await wait_for(lambda: built(api), within=30)
        assert await indicators(api) == live
    async with Database(f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}").transaction() as conn:
        beside = await conn.execute(sa.select(sa.func.count()).select_from(NEXT["ind_enterprises"]))
        assert beside.scalar_one() == 0  # emptied once switched


async def left_after_the_clear(database: Database) -> None:
    """The database as a rebuild of `many_enterprises(50)` leaves it right after its clear's
    commit: the view and inbox empty, a row per consumer not yet restarted."""
    async with database.transaction() as conn:
        await clear(conn)
        await conn.execute(inbox.delete())
        await mark(
            conn,
            PROJECTION,
            {"indicators-projection-enrolment": 50 + 3, "indicators-projection-visits": 2},
            restarted=False,
            started_at=dt.datetime.now(dt.UTC),
        )


async def test_a_rebuild_stopped_right_after_the_clear_is_finished_by_the_next_start(
    tmp_path: Path, nats_url: str
) -> None:
    await publish(nats_url, many_enterprises(50))
    app = app_on(tmp_path, nats_url, consumer_ack_wait_seconds=ACK_WAIT)
    async with serving(app) as api:
        live = await wait_for(lambda: counted(51)(api), within=30)
    # As a process would leave it stopped after the clear's commit, before it deleted the
    # durable consumers: the view empty, the consumers' durables at the end of their streams.
    await left_after_the_clear(app.state.runtime.database)
    await app.state.runtime.database.dispose()
    async with serving(app_on(tmp_path, nats_url, consumer_ack_wait_seconds=ACK_WAIT)) as api:
        assert_rebuilding(await api.get("/v1/indicators", headers=ADMIN))
        assert await wait_for(lambda: indicators(api), within=30) == live


async def test_a_rebuild_another_replica_left_after_its_clear_is_finished_by_this_one(
    tmp_path: Path, nats_url: str
) -> None:
    await publish(nats_url, many_enterprises(50))
    app = app_on(tmp_path, nats_url, consumer_ack_wait_seconds=ACK_WAIT)
    async with serving(app) as api:
        live = await wait_for(lambda: counted(51)(api), within=30)
        # Another replica cleared the view and stopped before it restarted the consumers: this
        # one's read on from their durables, at the end of their streams.
        await left_after_the_clear(app.state.runtime.database)
        assert_rebuilding(await api.get("/v1/indicators", headers=ADMIN))
        assert await wait_for(lambda: indicators(api), within=30) == live


async def test_nats_lost_during_a_rebuild_shows_in_its_progress(
    tmp_path: Path, nats_server: NatsServer, gate: Gate
) -> None:
    await publish(nats_server.url, STORY)
    # An acknowledgement lost with the connection comes again after ack_wait: keep it short.
    app = app_on(tmp_path, nats_server.url, consumer_ack_wait_seconds=2)
    async with serving(app) as api:
        live = await wait_for(lambda: counted(1)(api), within=15)
        gate.beside_only = True
        gate.open.clear()
        assert (await api.post(REPLAY, headers=ADMIN)).status_code == 202
        await wait_for(lambda: under_way(api), within=10)
        nats_server.stop()

        async def nats_missed() -> dict[str, Any] | None:
            response = await api.get(REPLAY, headers=ADMIN)
            assert response.status_code == 200, response.text
            progress: dict[str, Any] = response.json()
            return progress if progress["error"] else None

        progress = await wait_for(nats_missed, within=15)
        assert progress["state"] == "rebuilding"
        assert "NATS is not reachable" in progress["error"]
        assert await indicators(api) == live

        nats_server.restart()
        gate.open.set()
        await wait_for(lambda: built(api), within=30)
        assert await indicators(api) == live
