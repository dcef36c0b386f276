"""Names and tax ids never reach the logs, and every line of them is one JSON object.

The service runs as it is deployed, as its own process logging JSON to stderr, publishing to
a real nats-server; everything it writes while staff register, correct, are refused and send
bad input is read back and searched for the personal data they sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from score_testing.process import service_process
from score_testing.service import bearer
from score_testing.streams import wait_for

pytestmark = pytest.mark.nats

NAME = "Confecciones Chiquitanas S.R.L."
NEW_NAME = "Confecciones Chiquitanas S.A."
TAX_ID = "1028547021"
TRAINER = "María Choque Mamani"


async def test_names_and_tax_ids_never_reach_the_logs(tmp_path: Path, nats_url: str) -> None:
    async with (
        service_process("score_enrolment", tmp_path, nats_url) as service,
        httpx.AsyncClient(base_url=service.url, headers=bearer("staff"), trust_env=False) as client,
    ):
        await _personal_data_in_every_way(client)
        await wait_for(lambda: _all_published(client))

    logged = service.log()
    # The service's own log was read, with what it says of each command.
    assert '"event": "command.handled"' in logged, logged
    assert '"rule": "tax-id-registered-once"' in logged, logged
    for personal in (NAME, NEW_NAME, TAX_ID, TRAINER, "Chiquitanas", "Choque"):
        assert personal not in logged


async def test_every_line_is_one_json_object_uvicorn_and_alembic_included(
    tmp_path: Path, nats_url: str
) -> None:
    async with (
        service_process("score_enrolment", tmp_path, nats_url) as service,
        httpx.AsyncClient(base_url=service.url, headers=bearer("staff"), trust_env=False) as client,
    ):
        await _personal_data_in_every_way(client)

    lines = [json.loads(line) for line in service.log().splitlines()]
    for line in lines:
        assert {"event", "level", "timestamp", "service"} <= line.keys(), line
        assert line["service"] == "enrolment"
    by_logger = {line.get("logger") for line in lines}
    # uvicorn's records (started, stopped) and Alembic's (the migrations run at start) too.
    assert "uvicorn.error" in by_logger, by_logger
    assert "alembic.runtime.migration" in by_logger, by_logger
    assert any(line["event"] == "command.handled" for line in lines)


async def _all_published(client: httpx.AsyncClient) -> bool:
    pending: int = (await client.get("/readyz")).json()["checks"]["outbox_pending"]
    return pending == 0


async def _personal_data_in_every_way(client: httpx.AsyncClient) -> None:
    enterprise: dict[str, Any] = {
        "name": NAME,
        "tax_id": TAX_ID,
        "region": "santa_cruz",
        "sector": "Textiles y confecciones",
        "chamber": "CAINCO",
        "workforce": {"women": 46, "men": 19},
        "registered_on": "2018-03-05",
    }
    registered = await client.post("/v1/enterprises", json=enterprise)
    assert registered.status_code == 201, registered.text
    enterprise_id = registered.json()["id"]
    refused = await client.post("/v1/enterprises", json=enterprise)
    assert refused.status_code == 409
    invalid = await client.post("/v1/enterprises", json={**enterprise, "region": TAX_ID})
    assert invalid.status_code == 422
    corrected = await client.patch(f"/v1/enterprises/{enterprise_id}", json={"name": NEW_NAME})
    assert corrected.status_code == 200
    trainer = {"name": TRAINER, "sex": "female", "region": "santa_cruz", "organisation": "CAINCO"}
    assert (await client.post("/v1/trainers", json=trainer)).status_code == 201
    assert (await client.get(f"/v1/enterprises/{enterprise_id}")).status_code == 200
