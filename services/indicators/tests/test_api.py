"""The indicators API: the shape DOMAIN.md gives, scopes, roles, and a real stream feeding it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from score_chassis.jetstream import ensure_stream
from score_contracts.events import EnterpriseEnrolled, EnterpriseRegistered, ParticipantsTrained
from score_contracts.examples import example, example_envelope
from score_contracts.subjects import STREAMS, subject_for
from score_indicators.indicators import INDICATORS
from score_indicators.main import build_app
from score_indicators.settings import IndicatorsSettings
from score_testing.nats import free_port
from score_testing.service import TEST_SECRET, bearer, serving
from score_testing.streams import wait_for

READER = bearer("reader")


def settings(tmp_path: Path, nats_url: str) -> IndicatorsSettings:
    return IndicatorsSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'indicators.db'}",
        nats_url=nats_url,
        auth_secret=TEST_SECRET,
        log_format="console",
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(build_app(settings(tmp_path, f"nats://127.0.0.1:{free_port()}"))) as c:
        yield c


async def test_the_answer_has_the_documented_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/indicators", headers=READER)
    assert response.status_code == 200
    body = response.json()
    assert (body["country"], body["region"], body["phase"]) == ("bo", None, None)
    assert body["as_of"].endswith("Z") or "+00:00" in body["as_of"]
    assert list(body["indicators"]) == list(INDICATORS)


async def test_a_phase_and_a_region_scope_the_answer(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/indicators", params={"phase": "phase-3", "region": "tarija"}, headers=READER
    )
    assert response.status_code == 200
    assert (response.json()["phase"], response.json()["region"]) == ("phase-3", "tarija")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"phase": "phase-9"}, "phase"),
        ({"region": "atlantis"}, "region"),
        ({"country": "BOL"}, "country"),
    ],
)
async def test_an_unknown_scope_is_422_naming_the_parameter(
    client: httpx.AsyncClient, params: dict[str, str], field: str
) -> None:
    response = await client.get("/v1/indicators", params=params, headers=READER)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


async def test_a_chamber_reads_its_own_regions_only(client: httpx.AsyncClient) -> None:
    chamber = bearer("chamber", regions=["potosi"])
    own = await client.get("/v1/indicators", params={"region": "potosi"}, headers=chamber)
    assert own.status_code == 200
    other = await client.get("/v1/indicators", params={"region": "beni"}, headers=chamber)
    assert other.status_code == 403
    national = await client.get("/v1/indicators", headers=chamber)
    assert national.status_code == 403


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/indicators")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def _story() -> list[tuple[Any, int]]:
    """An enterprise registered, enrolled and trained: its three events and versions."""
    return [
        (example(EnterpriseRegistered), 1),
        (example(EnterpriseEnrolled), 2),
        (example(ParticipantsTrained), 3),
    ]


@pytest.mark.nats
async def test_the_same_event_delivered_twice_counts_once(tmp_path: Path, nats_url: str) -> None:
    client = await nats.connect(nats_url)
    js = client.jetstream()
    await ensure_stream(js, STREAMS["enrolment"])
    async with serving(build_app(settings(tmp_path, nats_url))) as api:
        for event, version in _story():
            envelope = example_envelope(event, stream_version=version)
            body = envelope.model_dump_json().encode()
            subject = subject_for(event, "bo", "santa_cruz")
            # Twice, without a message id, as a republish past the duplicate window would.
            await js.publish(subject, body)
            await js.publish(subject, body)

        async def trained() -> dict[str, Any] | None:
            response = await api.get("/v1/indicators", headers=READER)
            if response.status_code == 503:  # a consumer that started late catches up first
                return None
            values: dict[str, Any] = response.json()["indicators"]
            return values if values["enterprises_trained"] else None

        await wait_for(trained, within=15)
        await wait_for(lambda: _lag_is_zero(api), within=15)  # the copies were consumed too
        values = (await api.get("/v1/indicators", headers=READER)).json()["indicators"]
    await client.close()
    trained_event = example(ParticipantsTrained)
    assert values["enterprises_trained"] == 1
    assert values["participants_trained"] == (
        trained_event.managers.total + trained_event.workers.total
    )
    assert values["enterprises_registered"] == 1


async def _lag_is_zero(api: httpx.AsyncClient) -> bool:
    consumers = (await api.get("/readyz")).json()["checks"]["consumers"]
    return consumers["indicators-projection-enrolment"]["lag"] == 0


async def test_the_openapi_document_names_the_rebuild_answers(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    read = paths["/v1/indicators"]["get"]["responses"]
    assert set(read) == {"200", "401", "403", "422", "503"}
    assert "Retry-After" in read["503"]["headers"]
    assert set(read["503"]["content"]) == {"application/problem+json"}
    start = paths["/v1/ops/replay/projection"]["post"]["responses"]
    assert set(start) == {"202", "401", "403", "503"}
    assert "Location" in start["202"]["headers"]
    progress = paths["/v1/ops/replay/projection"]["get"]["responses"]
    assert set(progress) == {"200", "401", "403"}


async def test_a_rebuild_needs_nats_and_says_so_at_once(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/ops/replay/projection", headers=bearer("admin"))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    progress = await client.get("/v1/ops/replay/projection", headers=bearer("admin"))
    assert progress.status_code == 200
    assert progress.json()["state"] == "built"
    assert "NATS is not reachable" in progress.json()["error"]
