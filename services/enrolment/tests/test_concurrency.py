"""Writers at the same moment, on SQLite and on PostgreSQL: nothing lost, nothing doubled.

Without If-Match a write goes to whatever version the enterprise is at, deciding again when
another writer got in first (a bounded number of times); with If-Match the version named is
binding, and a writer that lost the race is told its version is stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from score_chassis import idempotency
from score_enrolment.main import build_app
from score_enrolment.settings import EnrolmentSettings
from score_testing.service import bearer, serving

STAFF = bearer("staff")
ENTERPRISE: dict[str, Any] = {
    "name": "Tusequis",
    "tax_id": "3344556677",
    "region": "santa_cruz",
    "sector": "furniture",
    "chamber": "CAINCO",
    "workforce": {"women": 20, "men": 45},
    "registered_on": "2016-05-02",
}
TRAINING: dict[str, Any] = {
    "trained_on": "2016-06-10",
    "managers": {"women": 1, "men": 1},
    "workers": {"women": 1, "men": 2},
}


@pytest.fixture
async def client(
    settings: EnrolmentSettings, database_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The enrolment API on each database backend."""
    async with serving(build_app(settings.model_copy(update={"database_url": database_url}))) as c:
        yield c


async def enrolled(client: httpx.AsyncClient) -> tuple[str, str]:
    enterprise = await client.post("/v1/enterprises", json=ENTERPRISE, headers=STAFF)
    enterprise_id = enterprise.json()["id"]
    enrolment = await client.post(
        f"/v1/enterprises/{enterprise_id}/enrolments",
        json={
            "module": 1,
            "delivery": "direct",
            "delivery_cost": {"amount": "4000"},
            "enrolled_on": "2016-06-01",
        },
        headers=STAFF,
    )
    assert enrolment.status_code == 201, enrolment.text
    return enterprise_id, enrolment.json()["enrolment_id"]


async def test_concurrent_writes_without_if_match_all_land(client: httpx.AsyncClient) -> None:
    enterprise_id, enrolment_id = await enrolled(client)
    path = f"/v1/enterprises/{enterprise_id}/trainings"
    body = {**TRAINING, "enrolment_id": enrolment_id}
    answers = await asyncio.gather(*(client.post(path, json=body, headers=STAFF) for _ in range(6)))
    versions = sorted(a.json()["version"] for a in answers if a.status_code == 201)
    # Retries are bounded: a writer unlucky every time is told so, and appended nothing.
    unlucky = [a.json()["rule"] for a in answers if a.status_code != 201]
    assert set(unlucky) <= {"concurrent-change"}
    assert versions == list(range(3, 3 + len(versions)))
    enterprise = (await client.get(f"/v1/enterprises/{enterprise_id}", headers=STAFF)).json()
    assert enterprise["version"] == 2 + len(versions)
    assert enterprise["enrolments"][0]["trainings"] == len(versions)


async def test_concurrent_writes_naming_one_version_let_one_through(
    client: httpx.AsyncClient,
) -> None:
    enterprise_id, enrolment_id = await enrolled(client)
    path = f"/v1/enterprises/{enterprise_id}/trainings"
    body = {**TRAINING, "enrolment_id": enrolment_id}
    at_2 = {**STAFF, "If-Match": '"2"'}
    answers = await asyncio.gather(*(client.post(path, json=body, headers=at_2) for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [201, 412, 412, 412, 412]
    enterprise = (await client.get(f"/v1/enterprises/{enterprise_id}", headers=STAFF)).json()
    assert enterprise["version"] == 3


async def test_concurrent_copies_of_one_request_append_once(client: httpx.AsyncClient) -> None:
    keyed = {**STAFF, "Idempotency-Key": "register-tusequis"}
    answers = await asyncio.gather(
        *(client.post("/v1/enterprises", json=ENTERPRISE, headers=keyed) for _ in range(5))
    )
    assert [a.status_code for a in answers] == [201] * 5
    assert len({a.json()["id"] for a in answers}) == 1
    listed = (await client.get("/v1/enterprises", headers=STAFF)).json()["items"]
    assert len(listed) == 1


async def test_concurrent_registrations_of_one_tax_id_register_one(
    client: httpx.AsyncClient,
) -> None:
    answers = await asyncio.gather(
        *(client.post("/v1/enterprises", json=ENTERPRISE, headers=STAFF) for _ in range(5))
    )
    assert sorted(a.status_code for a in answers) == [201, 409, 409, 409, 409]
    assert {a.json().get("rule") for a in answers if a.status_code == 409} == {
        "tax-id-registered-once"
    }
    listed = (await client.get("/v1/enterprises", headers=STAFF)).json()["items"]
    assert len(listed) == 1


async def test_a_retry_racing_its_original_gets_the_original_answer(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The original is slow between its key look-up and its decision (a busy server); the
    # retry looks its key up before the original commits, then is decided after it, against
    # a state where the module is already completed. The client asked once: same answer.
    enterprise_id, enrolment_id = await enrolled(client)
    trained = await client.post(
        f"/v1/enterprises/{enterprise_id}/trainings",
        json={**TRAINING, "enrolment_id": enrolment_id},
        headers=STAFF,
    )
    assert trained.status_code == 201, trained.text
    look_up = idempotency.answer_to
    first = asyncio.Event()

    async def slow_first_look_up(*args: Any, **kwargs: Any) -> Any:
        found = await look_up(*args, **kwargs)
        if not first.is_set():
            first.set()
            await asyncio.sleep(0.3)
        return found

    monkeypatch.setattr(idempotency, "answer_to", slow_first_look_up)
    keyed = {**STAFF, "Idempotency-Key": "complete-module-1"}
    url = f"/v1/enterprises/{enterprise_id}/completions"
    body = {"enrolment_id": enrolment_id, "completed_on": "2016-07-01"}

    async def retry() -> httpx.Response:
        await first.wait()
        return await client.post(url, json=body, headers=keyed)

    original, retried = await asyncio.gather(client.post(url, json=body, headers=keyed), retry())
    assert original.status_code == retried.status_code == 201, retried.text
    assert retried.json() == original.json()
