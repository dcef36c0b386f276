"""Idempotency keys outlive the process and are forgotten after the configured time."""

from __future__ import annotations

import asyncio
from typing import Any

from score_enrolment.main import build_app
from score_enrolment.settings import EnrolmentSettings
from score_testing.service import TEST_SECRET, bearer, serving

STAFF = {**bearer("staff"), "Idempotency-Key": "register-boshami"}
ENTERPRISE: dict[str, Any] = {
    "name": "Boshami",
    "tax_id": "5544332211",
    "region": "cochabamba",
    "sector": "textiles",
    "chamber": "Cámara Departamental de Industria de Cochabamba",
    "workforce": {"women": 70, "men": 42},
}


def test_keys_are_kept_for_24_hours_unless_configured_otherwise() -> None:
    assert EnrolmentSettings(auth_secret=TEST_SECRET).idempotency_ttl_hours == 24


async def test_a_key_survives_a_restart(settings: EnrolmentSettings) -> None:
    async with serving(build_app(settings)) as client:
        first = await client.post("/v1/enterprises", json=ENTERPRISE, headers=STAFF)
        assert first.status_code == 201
    async with serving(build_app(settings)) as client:
        again = await client.post("/v1/enterprises", json=ENTERPRISE, headers=STAFF)
        assert (again.status_code, again.json()) == (201, first.json())
        assert again.headers["Idempotent-Replayed"] == "true"
        assert (await client.get("/readyz")).json()["checks"]["outbox_pending"] == 1


async def test_a_key_is_forgotten_after_the_configured_time(settings: EnrolmentSettings) -> None:
    brief = settings.model_copy(update={"idempotency_ttl_hours": 0.5 / 3600})
    async with serving(build_app(brief)) as client:
        first = await client.post("/v1/enterprises", json=ENTERPRISE, headers=STAFF)
        assert first.status_code == 201
        await asyncio.sleep(0.6)
        other = {**ENTERPRISE, "name": "Tusequis", "tax_id": "3344556677"}
        reused = await client.post("/v1/enterprises", json=other, headers=STAFF)
        assert reused.status_code == 201
        assert reused.json()["id"] != first.json()["id"]
