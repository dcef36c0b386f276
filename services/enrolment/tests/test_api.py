"""The enrolment API over HTTP: answers, problem details, idempotency, concurrency, roles."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from score_chassis.testing.service import bearer

STAFF = bearer("staff")

ENTERPRISE: dict[str, Any] = {
    "name": "Delizia",
    "tax_id": "1020304050",
    "region": "la_paz",
    "sector": "food",
    "chamber": "Cámara Nacional de Industrias",
    "workforce": {"women": 40, "men": 60},
    "registered_on": "2017-02-01",
}


async def register(client: httpx.AsyncClient, **changes: Any) -> str:
    response = await client.post("/v1/enterprises", json={**ENTERPRISE, **changes}, headers=STAFF)
    assert response.status_code == 201, response.text
    enterprise_id: str = response.json()["id"]
    return enterprise_id


async def enrol(client: httpx.AsyncClient, enterprise_id: str, module: int = 1) -> str:
    response = await client.post(
        f"/v1/enterprises/{enterprise_id}/enrolments",
        json={
            "module": module,
            "delivery": "direct",
            "delivery_cost": {"amount": "3000.00"},
            "enrolled_on": "2017-03-01",
        },
        headers=STAFF,
    )
    assert response.status_code == 201, response.text
    enrolment_id: str = response.json()["enrolment_id"]
    return enrolment_id


async def test_a_registered_enterprise_reads_back(client: httpx.AsyncClient) -> None:
    enterprise_id = await register(client)
    response = await client.get(f"/v1/enterprises/{enterprise_id}", headers=bearer("reader"))
    assert response.status_code == 200
    body = response.json()
    assert body["version"] == 1
    assert body["region"] == "la_paz"
    assert body["workforce"] == {"women": 40, "men": 60}
    assert body["country"] == "bo"


async def test_enrolment_and_training_answer_with_ids_and_versions(
    client: httpx.AsyncClient,
) -> None:
    enterprise_id = await register(client)
    enrolment_id = await enrol(client, enterprise_id)
    response = await client.post(
        f"/v1/enterprises/{enterprise_id}/trainings",
        json={
            "enrolment_id": enrolment_id,
            "trained_on": "2017-03-10",
            "managers": {"women": 1, "men": 1},
            "workers": {"women": 1, "men": 1},
        },
        headers=STAFF,
    )
    assert response.status_code == 201
    assert response.json() == {"id": enterprise_id, "version": 3}
    enterprise = (await client.get(f"/v1/enterprises/{enterprise_id}", headers=STAFF)).json()
    assert enterprise["enrolments"][0]["trainings"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"region": "atlantis"}, "region"),
        ({"workforce": {"women": -1, "men": 3}}, "workforce.women"),
        ({"registered_on": "3017-01-01"}, "registered_on"),
        ({"name": ""}, "name"),
        ({"country": "BOL"}, "country"),
        ({"colour": "blue"}, "colour"),
    ],
)
async def test_bad_input_names_the_field_and_appends_nothing(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await client.post("/v1/enterprises", json={**ENTERPRISE, **change}, headers=STAFF)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    ready = (await client.get("/readyz")).json()
    assert ready["checks"]["outbox_pending"] == 0


async def test_a_refused_command_names_the_rule(client: httpx.AsyncClient) -> None:
    enterprise_id = await register(client)
    response = await client.post(
        f"/v1/enterprises/{enterprise_id}/enrolments",
        json={"module": 3, "delivery": "direct", "delivery_cost": {"amount": "100"}},
        headers=STAFF,
    )
    assert response.status_code == 409
    assert response.json()["rule"] == "module-1-first"


async def test_an_unknown_enterprise_is_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/enterprises/nope", headers=STAFF)
    assert response.status_code == 404
    response = await client.post(
        "/v1/enterprises/nope/enrolments",
        json={"module": 1, "delivery": "direct", "delivery_cost": {"amount": "100"}},
        headers=STAFF,
    )
    assert response.status_code == 404


async def test_a_retried_request_returns_the_first_answer_and_appends_nothing(
    client: httpx.AsyncClient,
) -> None:
    headers = {**STAFF, "Idempotency-Key": "register-delizia-1"}
    first = await client.post("/v1/enterprises", json=ENTERPRISE, headers=headers)
    again = await client.post("/v1/enterprises", json=ENTERPRISE, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert (await client.get("/readyz")).json()["checks"]["outbox_pending"] == 1
    other = await client.post(
        "/v1/enterprises", json={**ENTERPRISE, "name": "Other"}, headers=headers
    )
    assert other.status_code == 422
    assert other.json()["errors"][0]["field"] == "idempotency-key"


async def test_a_stale_if_match_is_412_and_appends_nothing(client: httpx.AsyncClient) -> None:
    enterprise_id = await register(client)
    await enrol(client, enterprise_id)
    response = await client.post(
        f"/v1/enterprises/{enterprise_id}/enrolments",
        json={"module": 2, "delivery": "direct", "delivery_cost": {"amount": "100"}},
        headers={**STAFF, "If-Match": '"1"'},
    )
    assert response.status_code == 412
    enterprise = (await client.get(f"/v1/enterprises/{enterprise_id}", headers=STAFF)).json()
    assert enterprise["version"] == 2


async def test_without_a_token_is_401_and_with_a_reader_token_a_write_is_403(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/v1/enterprises", json=ENTERPRISE)).status_code == 401
    bad = {"Authorization": "Bearer not-a-token"}
    assert (await client.post("/v1/enterprises", json=ENTERPRISE, headers=bad)).status_code == 401
    reader = bearer("reader")
    assert (
        await client.post("/v1/enterprises", json=ENTERPRISE, headers=reader)
    ).status_code == 403


async def test_a_chamber_sees_only_its_regions(client: httpx.AsyncClient) -> None:
    enterprise_id = await register(client)
    own = bearer("chamber", regions=["la_paz"])
    foreign = bearer("chamber", regions=["santa_cruz"])
    assert (await client.get(f"/v1/enterprises/{enterprise_id}", headers=own)).status_code == 200
    assert (
        await client.get(f"/v1/enterprises/{enterprise_id}", headers=foreign)
    ).status_code == 404
