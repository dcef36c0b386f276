"""Names and tax ids never reach the logs.

The service runs as it is deployed, as its own process logging JSON to stderr, publishing to
a real nats-server; everything it writes while staff register, correct, are refused and send
bad input is read back and searched for the personal data they sent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from score_chassis.nats_server import free_port
from score_chassis.testing.service import TEST_SECRET, bearer
from score_chassis.testing.streams import wait_for

pytestmark = pytest.mark.nats

NAME = "Confecciones Chiquitanas S.R.L."
NEW_NAME = "Confecciones Chiquitanas S.A."
TAX_ID = "1028547021"
TRAINER = "María Choque Mamani"


async def test_names_and_tax_ids_never_reach_the_logs(tmp_path: Path, nats_url: str) -> None:
    port = free_port()
    log_file = tmp_path / "enrolment.log"
    env = {
        **os.environ,
        "SCORE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'enrolment.db'}",
        "SCORE_NATS_URL": nats_url,
        "SCORE_AUTH_SECRET": TEST_SECRET,
        "SCORE_HTTP_PORT": str(port),
        "SCORE_LOG_FORMAT": "json",
        "SCORE_LOG_LEVEL": "debug",
    }
    with log_file.open("wb") as log:
        service = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "score_enrolment",
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=bearer("staff"), trust_env=False
        ) as client:
            await wait_for(lambda: _ready(client), within=30)
            await _personal_data_in_every_way(client)
            await wait_for(lambda: _all_published(client))
    finally:
        service.send_signal(signal.SIGTERM)
        await asyncio.wait_for(service.wait(), timeout=15)

    logged = log_file.read_text("utf-8")
    # The service's own log was read, with what it says of each command.
    assert '"event": "command.handled"' in logged, logged
    assert '"rule": "tax-id-registered-once"' in logged, logged
    for personal in (NAME, NEW_NAME, TAX_ID, TRAINER, "Chiquitanas", "Choque"):
        assert personal not in logged


async def _ready(client: httpx.AsyncClient) -> bool:
    try:
        response = await client.get("/readyz")
    except httpx.TransportError:
        await asyncio.sleep(0.1)
        return False
    return response.status_code == 200 and response.json()["checks"]["nats"] == "ok"


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
