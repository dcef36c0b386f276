"""The OpenAPI document tells the truth: each endpoint, its body, and the answers it can give,
errors as the problem details they are."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from score_enrolment.main import build_app
from score_enrolment.settings import EnrolmentSettings

BODY = {"400", "413"}
"""Any write can be answered these before its body is looked at: unreadable, too large."""
WRITE_TO_EXISTING = {*BODY, "401", "403", "404", "409", "412", "422"}
ANSWERS: dict[tuple[str, str], set[str]] = {
    ("post", "/v1/enterprises"): {"201", *BODY, "401", "403", "409", "422"},
    ("get", "/v1/enterprises"): {"200", "401", "403", "422"},
    ("get", "/v1/enterprises/{enterprise_id}"): {"200", "401", "404", "422"},
    ("patch", "/v1/enterprises/{enterprise_id}"): {"200", *WRITE_TO_EXISTING},
    ("post", "/v1/enterprises/{enterprise_id}/enrolments"): {"201", *WRITE_TO_EXISTING},
    ("post", "/v1/enterprises/{enterprise_id}/trainings"): {"201", *WRITE_TO_EXISTING},
    ("post", "/v1/enterprises/{enterprise_id}/payments"): {"201", *WRITE_TO_EXISTING},
    ("post", "/v1/enterprises/{enterprise_id}/completions"): {"201", *WRITE_TO_EXISTING},
    ("post", "/v1/enterprises/{enterprise_id}/withdrawal"): {"200", *WRITE_TO_EXISTING},
    ("post", "/v1/enterprises/{enterprise_id}/case-studies"): {"201", *WRITE_TO_EXISTING},
    ("post", "/v1/trainers"): {"201", *BODY, "401", "403", "422"},
    ("get", "/v1/trainers/{trainer_id}"): {"200", "401", "404", "422"},
    ("post", "/v1/trainers/{trainer_id}/certifications"): {"201", *WRITE_TO_EXISTING},
}


@pytest.fixture
def openapi(settings: EnrolmentSettings) -> dict[str, Any]:
    document: dict[str, Any] = build_app(settings).openapi()
    return document


def operations(openapi: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, methods in openapi["paths"].items()
        # The operators' endpoints every service has are the chassis's, tested there.
        if path.startswith("/v1/") and not path.startswith("/v1/ops/")
        for method, operation in methods.items()
    }


def test_every_endpoint_lists_exactly_the_answers_it_can_give(openapi: dict[str, Any]) -> None:
    found = {key: set(op["responses"]) for key, op in operations(openapi).items()}
    assert found == ANSWERS


def test_every_error_is_documented_as_problem_details(openapi: dict[str, Any]) -> None:
    for (method, path), operation in operations(openapi).items():
        for code, response in operation["responses"].items():
            if code.startswith("4"):
                assert response["content"] == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path, code)


def test_every_endpoint_needs_a_bearer_token(openapi: dict[str, Any]) -> None:
    for operation in operations(openapi).values():
        assert operation["security"] == [{"HTTPBearer": []}]


def test_every_write_documents_its_body_its_headers_and_its_answer(
    openapi: dict[str, Any],
) -> None:
    for (method, path), operation in operations(openapi).items():
        if method == "get":
            continue
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body.endswith("Body"), (method, path)
        headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
        existing = "{" in path
        assert headers == ({"idempotency-key", "if-match"} if existing else {"idempotency-key"})
        [success] = [r for code, r in operation["responses"].items() if code.startswith("2")]
        assert success["content"]["application/json"]["schema"]["$ref"].endswith("/Written")
        assert "Idempotent-Replayed" in success["headers"]


def test_bodies_name_their_fields_as_the_events_do(openapi: dict[str, Any]) -> None:
    schemas = openapi["components"]["schemas"]
    assert set(schemas["RegisterEnterpriseBody"]["required"]) == {
        "name",
        "tax_id",
        "region",
        "sector",
        "chamber",
        "workforce",
    }
    assert set(schemas["EnrolBody"]["properties"]) == {
        "module",
        "delivery",
        "partner",
        "delivery_cost",
        "enrolled_on",
        "exception_reason",
    }


async def test_the_document_is_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    served = (await client.get("/openapi.json")).json()
    assert "/v1/enterprises/{enterprise_id}/case-studies" in served["paths"]


def test_regions_and_countries_are_enumerated(openapi: dict[str, Any]) -> None:
    body = openapi["components"]["schemas"]["RegisterEnterpriseBody"]["properties"]
    assert "santa_cruz" in body["region"]["enum"] and len(body["region"]["enum"]) == 9
    assert body["country"]["enum"] == ["bo"]


def test_text_fields_document_that_they_hold_no_control_characters(
    openapi: dict[str, Any],
) -> None:
    name = openapi["components"]["schemas"]["RegisterEnterpriseBody"]["properties"]["name"]
    assert name["pattern"].startswith("^[^\\u0000-\\u001f")


def test_metrics_are_documented_as_the_text_they_are(openapi: dict[str, Any]) -> None:
    content = openapi["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(content) == ["text/plain"]


async def test_a_method_not_served_is_405_allowing_every_documented_method(
    client: httpx.AsyncClient, openapi: dict[str, Any]
) -> None:
    for path, methods in openapi["paths"].items():
        if path.startswith("/v1/ops/"):  # the chassis's (its own tests), ids not enterprises'
            continue
        concrete = path.replace("{enterprise_id}", "e1").replace("{trainer_id}", "t1")
        response = await client.request("TRACE", concrete)
        assert response.status_code == 405, path
        assert response.headers["content-type"] == "application/problem+json"
        allowed = {m.strip().lower() for m in response.headers["allow"].split(",")}
        assert allowed - {"head"} == set(methods), path
