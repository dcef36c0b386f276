"""Enrolment → SCORE_ENROLMENT → the visits service's views, which then gate visit commands.

Both services run in this process with their own SQLite files and a real nats-server between
them; each is driven over its HTTP API only. The visits service never reads enrolment's
database nor calls it: what it knows arrives on the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from score_chassis.runtime import Runtime
from score_enrolment.main import build_app as build_enrolment
from score_enrolment.settings import EnrolmentSettings
from score_testing.service import TEST_SECRET, bearer, serving
from score_testing.streams import stream_messages, wait_for
from score_visits.main import build_app as build_visits
from score_visits.settings import VisitsSettings

pytestmark = [pytest.mark.nats, pytest.mark.timeout(60)]

STAFF = bearer("staff")
ADMIN = bearer("admin")
NOT_KNOWN_YET = {
    # Just started, the visits service reads the enrolment stream from its start: until it
    # has, it cannot tell a fact not yet arrived from one it has not read yet.
    "views-rebuilding-not-known-yet",
    "enterprise-not-known-yet",
    "enrolment-not-known-yet",
    "trainer-not-known-yet",
    "certification-not-known-yet",
}


@dataclass
class Services:
    enrolment: httpx.AsyncClient
    visits: httpx.AsyncClient
    enrolment_runtime: Runtime

    async def created(self, path: str, body: dict[str, Any]) -> str:
        response = await self.enrolment.post(path, json=body, headers=STAFF)
        assert response.status_code in (200, 201), response.text
        created: str = response.json()["id"]
        return created

    async def settled(self) -> None:
        """Wait until everything enrolment recorded is in the visits views (bounded)."""
        async with asyncio.timeout(15):
            await self.enrolment_runtime.relay.drained()
        await wait_for(self._views_caught_up, within=15)

    async def _views_caught_up(self) -> bool:
        progress = await self.visits.get("/v1/ops/replay/views", headers=ADMIN)
        return progress.status_code == 200 and bool(progress.json()["done"])

    async def schedule(self, **visit: Any) -> httpx.Response:
        # The trainer of the visit schedules it, with a token that speaks for them.
        trainer = bearer("trainer", trainer_id=visit["trainer_id"])
        return await self.visits.post("/v1/visits", json=visit, headers=trainer)


@pytest.fixture
async def services(tmp_path: Path, nats_url: str) -> AsyncIterator[Services]:
    common: dict[str, Any] = {
        "nats_url": nats_url,
        "auth_secret": TEST_SECRET,
        "log_format": "console",
        "relay_poll_seconds": 0.1,
    }
    enrolment_app = build_enrolment(
        EnrolmentSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'enrolment.db'}", **common)
    )
    visits_app = build_visits(
        VisitsSettings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'visits.db'}", **common)
    )
    async with AsyncExitStack() as stack:
        enrolment = await stack.enter_async_context(serving(enrolment_app, "http://enrolment"))
        visits = await stack.enter_async_context(serving(visits_app, "http://visits"))
        yield Services(enrolment, visits, enrolment_app.state.runtime)


async def register_enrolled_enterprise(services: Services) -> str:
    enterprise_id = await services.created(
        "/v1/enterprises",
        {
            "name": "Confecciones Chiquitanas S.R.L.",
            "tax_id": "1028547021",
            "region": "santa_cruz",
            "sector": "Textiles y confecciones",
            "chamber": "CAINCO",
            "workforce": {"women": 46, "men": 19},
        },
    )
    await services.created(
        f"/v1/enterprises/{enterprise_id}/enrolments",
        {"module": 1, "delivery": "direct", "delivery_cost": {"amount": "5600.00"}},
    )
    return enterprise_id


async def register_trainer(services: Services, *modules: int) -> str:
    trainer_id = await services.created(
        "/v1/trainers",
        {
            "name": "María Choque Mamani",
            "sex": "female",
            "region": "santa_cruz",
            "organisation": "CAINCO",
        },
    )
    await services.created(
        f"/v1/trainers/{trainer_id}/certifications", {"modules": list(modules), "level": "trainer"}
    )
    return trainer_id


async def test_a_visit_is_accepted_once_the_enrolment_is_known_and_published_on_score_visits(
    services: Services, nats_url: str
) -> None:
    enterprise_id = await register_enrolled_enterprise(services)
    trainer_id = await register_trainer(services, 1)
    visit = {"enterprise_id": enterprise_id, "trainer_id": trainer_id, "module": 1}

    # A client retries "not known yet" (with the same Idempotency-Key) until the facts arrive.
    key = {"Idempotency-Key": "first-visit-to-chiquitanas"}

    async def accepted() -> httpx.Response | None:
        trainer = bearer("trainer", trainer_id=trainer_id)
        response = await services.visits.post("/v1/visits", json=visit, headers={**trainer, **key})
        if response.status_code == 409:
            assert response.json()["rule"] in NOT_KNOWN_YET, response.text
            assert response.json()["type"].endswith("/problems/not-known-yet")
            assert int(response.headers["retry-after"]) >= 1
            return None
        return response

    response = await wait_for(accepted, within=15)
    assert response.status_code == 201, response.text
    visit_id = response.json()["id"]

    messages = await wait_for(lambda: stream_messages(nats_url, "SCORE_VISITS"), within=15)
    [(headers, scheduled)] = messages
    assert scheduled["type"] == "org.ilo.score.visits.visit_scheduled.v1"
    assert scheduled["subject"] == f"visit/{visit_id}"
    assert scheduled["data"]["enterprise_id"] == enterprise_id
    assert headers["Nats-Msg-Id"] == scheduled["id"]


async def test_a_withdrawal_reaching_the_views_refuses_new_visits_for_good(
    services: Services,
) -> None:
    enterprise_id = await register_enrolled_enterprise(services)
    trainer_id = await register_trainer(services, 1)
    await services.settled()
    visit = {"enterprise_id": enterprise_id, "trainer_id": trainer_id, "module": 1}
    assert (await services.schedule(**visit)).status_code == 201

    await services.created(
        f"/v1/enterprises/{enterprise_id}/withdrawal", {"reason": "Cambio de propietarios"}
    )
    await services.settled()
    refused = await services.schedule(**visit)
    assert refused.status_code == 409
    assert refused.json()["rule"] == "enterprise-withdrawn"
    assert refused.json()["type"].endswith("/problems/refused")
    assert "retry-after" not in refused.headers


async def test_a_trainer_not_certified_for_the_module_is_refused(services: Services) -> None:
    enterprise_id = await register_enrolled_enterprise(services)
    certified_for_2 = await register_trainer(services, 2)
    await services.settled()
    refused = await services.schedule(
        enterprise_id=enterprise_id, trainer_id=certified_for_2, module=1
    )
    assert refused.status_code == 409
    assert refused.json()["rule"] == "certification-not-known-yet"

    # Certified for module 1 too, a moment later: the same visit is now accepted.
    await services.created(
        f"/v1/trainers/{certified_for_2}/certifications", {"modules": [1], "level": "trainer"}
    )
    await services.settled()
    accepted = await services.schedule(
        enterprise_id=enterprise_id, trainer_id=certified_for_2, module=1
    )
    assert accepted.status_code == 201, accepted.text
