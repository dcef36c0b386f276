"""The views built by the real consumer from a real stream: duplicates and late, older events
leave them right, and a database that lost its views gets them back from the stream."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from score_chassis.database import Database
from score_contracts.envelope import Envelope
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    Event,
    TrainerCertified,
    TrainerRegistered,
)
from score_contracts.examples import (
    ENROLMENT_ID,
    ENTERPRISE_ID,
    TRAINER_ID,
    example,
    example_envelope,
)
from score_testing.service import TEST_SECRET, bearer, serving
from score_testing.streams import publish_envelopes, wait_for
from score_visits.main import build_app
from score_visits.settings import VisitsSettings

pytestmark = pytest.mark.nats

Snap = Callable[[Database], Awaitable[dict[str, list[tuple[Any, ...]]]]]

ADMIN = bearer("admin")
DAY = dt.date(2018, 3, 12)


async def publish(nats_url: str, *envelopes: Envelope[Event], again: bool = False) -> None:
    """Publish to SCORE_ENROLMENT as enrolment does; `again` stores a second copy of each."""
    await publish_envelopes(nats_url, envelopes, again=again)


async def caught_up(client: httpx.AsyncClient, messages: int) -> bool:
    progress = (await client.get("/v1/ops/replay/views", headers=ADMIN)).json()
    return bool(progress.get("done")) and progress["last_sequence"] == messages


def visits_app(tmp_path: Path, nats_url: str, name: str = "visits") -> FastAPI:
    return build_app(
        VisitsSettings(
            database_url=f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}",
            nats_url=nats_url,
            auth_secret=TEST_SECRET,
            log_format="console",
        )
    )


def database_of(app: FastAPI) -> Database:
    database: Database = app.state.runtime.database
    return database


REGISTERED, ENROLLED, WITHDRAWN = (
    example_envelope(example(EnterpriseRegistered), stream_version=1),
    example_envelope(example(EnterpriseEnrolled), stream_version=2),
    example_envelope(example(EnterpriseWithdrawn), stream_version=3),
)
TRAINER_REGISTERED, CERTIFIED = (
    example_envelope(example(TrainerRegistered), stream_version=1),
    example_envelope(example(TrainerCertified), stream_version=2),
)


async def test_duplicates_and_late_older_events_leave_the_views_right(
    tmp_path: Path, nats_url: str, snapshot: Snap
) -> None:
    app = visits_app(tmp_path, nats_url)
    async with serving(app) as client:
        # Newest first: the withdrawal, then the enrolment and registration it follows.
        await publish(nats_url, WITHDRAWN, CERTIFIED, ENROLLED, REGISTERED, TRAINER_REGISTERED)
        await publish(nats_url, REGISTERED, ENROLLED, CERTIFIED, again=True)
        await publish(nats_url, REGISTERED)  # within the window: JetStream drops this one
        await wait_for(lambda: caught_up(client, 8), within=15)

        assert await snapshot(database_of(app)) == {
            "vis_enterprises": [(ENTERPRISE_ID, "bo", "santa_cruz", dt.date(2019, 2, 18))],
            "vis_enrolments": [(ENROLMENT_ID, ENTERPRISE_ID, 1)],
            "vis_trainers": [(TRAINER_ID,)],
            "vis_certifications": [(TRAINER_ID, 1), (TRAINER_ID, 2)],
        }
        refused = await client.post(
            "/v1/visits",
            json={"enterprise_id": ENTERPRISE_ID, "trainer_id": TRAINER_ID, "module": 1},
            headers=bearer("trainer"),
        )
        assert refused.json()["rule"] == "enterprise-withdrawn"


async def test_a_database_without_its_views_reads_the_stream_again_from_the_start(
    tmp_path: Path, nats_url: str, snapshot: Snap
) -> None:
    await publish(nats_url, REGISTERED, ENROLLED, TRAINER_REGISTERED, CERTIFIED)
    first = visits_app(tmp_path, nats_url, name="first")
    async with serving(first) as client:
        await wait_for(lambda: caught_up(client, 4), within=15)
        built = await snapshot(database_of(first))
    assert built["vis_certifications"]

    # A new, empty database (lost, restored from an old backup …) with the same durable
    # consumer, which has acknowledged all four events already.
    second = visits_app(tmp_path, nats_url, name="second")
    async with serving(second) as client:
        await wait_for(lambda: caught_up(client, 4), within=15)
        await wait_for(lambda: _equal(snapshot(database_of(second)), built), within=15)


async def _equal(rebuilt: Awaitable[dict[str, Any]], built: dict[str, Any]) -> bool:
    return await rebuilt == built
