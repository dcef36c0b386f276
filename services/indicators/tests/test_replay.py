"""The indicators' projection, dropped and rebuilt from both streams that feed it, counts
exactly what the live one did, whatever had happened to it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from score_chassis.jetstream import ensure_stream
from score_chassis.testing.service import TEST_SECRET, bearer, serving
from score_chassis.testing.streams import wait_for
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    ParticipantsTrained,
    VisitCompleted,
    VisitScheduled,
)
from score_contracts.examples import example, example_envelope
from score_contracts.subjects import STREAMS, subject_for
from score_indicators.main import build_app
from score_indicators.settings import IndicatorsSettings
from score_indicators.tables import trainings, visits

pytestmark = pytest.mark.nats

ADMIN = bearer("admin")
STORY = [
    (example(EnterpriseRegistered), 1),
    (example(EnterpriseEnrolled), 2),
    (example(ParticipantsTrained), 3),
    (example(VisitScheduled), 1),
    (example(VisitCompleted), 2),
]


async def indicators(api: httpx.AsyncClient) -> dict[str, Any]:
    values: dict[str, Any] = (await api.get("/v1/indicators", headers=ADMIN)).json()["indicators"]
    return values


async def test_a_rebuilt_projection_counts_what_the_live_one_did(
    tmp_path: Path, nats_url: str
) -> None:
    client = await nats.connect(nats_url)
    js = client.jetstream()
    for context in ("enrolment", "visits"):
        await ensure_stream(js, STREAMS[context])
    for event, version in STORY:
        body = example_envelope(event, stream_version=version).model_dump_json().encode()
        await js.publish(subject_for(event, "bo", "santa_cruz"), body)
    await client.close()
    settings = IndicatorsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}",
        nats_url=nats_url,
        auth_secret=TEST_SECRET,
    )
    app = build_app(settings)
    async with serving(app) as api:

        async def everything_counted() -> dict[str, Any] | None:
            values = await indicators(api)
            return values if values["visits_completed"] and values["enterprises_trained"] else None

        live = await wait_for(everything_counted, within=15)
        # Damage the projection, as a bug in a handler would have: only a rebuild from the
        # streams puts it right.
        async with app.state.runtime.database.transaction() as conn:
            await conn.execute(trainings.delete())
            await conn.execute(visits.delete())
        assert (await indicators(api))["enterprises_trained"] == 0

        started = await api.post("/v1/ops/replay/projection", headers=ADMIN)
        assert started.status_code == 202, started.text
        assert started.json()["consumers"] == [
            "indicators-projection-enrolment",
            "indicators-projection-visits",
        ]

        async def done() -> bool:
            progress = (await api.get("/v1/ops/replay/projection", headers=ADMIN)).json()
            return bool(progress["done"]) and progress["processed"] == len(STORY)

        await wait_for(done, within=20)
        assert await indicators(api) == live
        assert (
            await api.post("/v1/ops/replay/projection", headers=bearer("staff"))
        ).status_code == 403
