"""Hostile and implausible input to the enrolment API: each refused with problem details that
name the field and the rule, none changing anything, none answered 500.

Each case is one that was once accepted, answered 500, or answered with the input echoed back.
"""

from __future__ import annotations

from typing import Any, Final

import httpx
import pytest

from score_chassis.settings import DEFAULT_MAX_BODY_BYTES
from score_testing.service import bearer

STAFF: Final = bearer("staff")

ENTERPRISE: Final[dict[str, Any]] = {
    "name": "Delizia",
    "tax_id": "1020304050",
    "region": "la_paz",
    "sector": "food",
    "chamber": "Cámara Nacional de Industrias",
    "workforce": {"women": 40, "men": 44},
    "registered_on": "2017-02-01",
}


async def appended(client: httpx.AsyncClient) -> int:
    """Events appended so far: NATS is absent, so every one waits in the outbox."""
    pending: int = (await client.get("/readyz")).json()["checks"]["outbox_pending"]
    return pending


async def register(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/v1/enterprises", json=body, headers=STAFF)


def refusal(response: httpx.Response, field: str) -> dict[str, Any]:
    """The error naming `field` in a 422 problem."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors: list[dict[str, Any]] = response.json()["errors"]
    named = [error for error in errors if error["field"] == field]
    assert named, errors
    return named[0]


async def enrolled(client: httpx.AsyncClient) -> tuple[str, str]:
    """An enterprise of 84 workers, enrolled in module 1."""
    enterprise = (await register(client, ENTERPRISE)).json()["id"]
    enrolment = await client.post(
        f"/v1/enterprises/{enterprise}/enrolments",
        json={"module": 1, "delivery": "direct", "delivery_cost": {"amount": "100"}},
        headers=STAFF,
    )
    assert enrolment.status_code == 201, enrolment.text
    return enterprise, enrolment.json()["enrolment_id"]


# If-Match


@pytest.mark.parametrize(
    "if_match",
    [b'"' + b"9" * 4301 + b'"', b"9" * 19, b'W/"' + b"9" * 40 + b'"'],
    ids=["4301 nines", "19 digits", "weak, 40 digits"],
)
async def test_a_version_beyond_any_is_a_failed_precondition(
    client: httpx.AsyncClient, if_match: bytes
) -> None:
    enterprise, _ = await enrolled(client)
    before = await appended(client)
    response = await client.post(
        f"/v1/enterprises/{enterprise}/withdrawal",
        json={"reason": "closing"},
        headers=[*STAFF.items(), ("If-Match", if_match)],
    )
    assert response.status_code == 412, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert len(response.content) < 1000
    assert await appended(client) == before


@pytest.mark.parametrize("if_match", [b'"\xb2"', '"\u0663"'.encode(), b'"-1"', b'"3'])
async def test_a_version_not_written_in_ascii_digits_is_invalid(
    client: httpx.AsyncClient, if_match: bytes
) -> None:
    enterprise, _ = await enrolled(client)
    before = await appended(client)
    response = await client.post(
        f"/v1/enterprises/{enterprise}/withdrawal",
        json={"reason": "closing"},
        headers=[*STAFF.items(), ("If-Match", if_match)],
    )
    error = refusal(response, "if-match")
    assert error["location"] == "header"
    assert await appended(client) == before


async def test_leading_zeros_name_the_same_version(client: httpx.AsyncClient) -> None:
    enterprise, _ = await enrolled(client)  # at version 2
    response = await client.post(
        f"/v1/enterprises/{enterprise}/withdrawal",
        json={"reason": "closing"},
        headers={**STAFF, "If-Match": '"0002"'},
    )
    assert response.status_code == 200, response.text


# Countries and regions


@pytest.mark.parametrize(
    ("place", "field"),
    [
        ({"country": "zz", "region": "r" * 65}, "country"),
        ({"country": "zz", "region": "atlantis"}, "country"),
        ({"country": "pe", "region": "lima"}, "country"),
        ({"region": "atlantis"}, "region"),
        ({"region": "r" * 65}, "region"),
        ({"region": "national"}, "region"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/enterprises", "/v1/trainers"])
async def test_a_place_outside_the_known_regions_is_refused(
    client: httpx.AsyncClient, path: str, place: dict[str, str], field: str
) -> None:
    trainer = {"name": "Ana", "sex": "female", "region": "la_paz", "organisation": "CNI"}
    body = {**(ENTERPRISE if path == "/v1/enterprises" else trainer), **place}
    response = await client.post(path, json=body, headers=STAFF)
    error = refusal(response, field)
    assert error["rule"] in {"unknown-country", "unknown-region", "string_too_long", "enum"}
    assert await appended(client) == 0


async def test_a_list_of_an_unknown_country_is_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/v1/enterprises?country=zz", headers=STAFF)
    assert refusal(response, "country")["location"] == "query"


# Sizes


async def test_a_body_over_the_limit_is_refused_before_it_is_read(
    client: httpx.AsyncClient,
) -> None:
    huge = b'{"name": "' + b"x" * (DEFAULT_MAX_BODY_BYTES + 1) + b'"}'
    response = await client.post(
        "/v1/enterprises",
        content=huge,
        headers={**STAFF, "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert str(DEFAULT_MAX_BODY_BYTES) in response.json()["detail"]
    assert await appended(client) == 0


async def test_a_streamed_body_over_the_limit_is_refused_too(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(40):  # 40 × 64 KiB, sent without a Content-Length
            yield b" " * 65536

    response = await client.post(
        "/v1/enterprises", content=chunks(), headers={**STAFF, "Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text
    assert response.json()["title"] == "Content Too Large"
    assert await appended(client) == 0


async def test_a_huge_bad_value_is_not_echoed_back(client: httpx.AsyncClient) -> None:
    response = await register(client, {**ENTERPRISE, "region": "x" * 900_000})
    refusal(response, "region")
    assert len(response.content) < 4000


# Implausible data


@pytest.mark.parametrize(
    ("participants", "status"),
    [
        ({"managers": {"women": 2, "men": 2}, "workers": {"women": 40, "men": 40}}, 201),
        ({"managers": {"women": 2, "men": 2}, "workers": {"women": 40, "men": 41}}, 422),
        (
            {
                "managers": {"women": 1_000_000, "men": 1_000_000},
                "workers": {"women": 1_000_000, "men": 1_000_000},
            },
            422,
        ),
    ],
    ids=["the whole workforce", "one more than the workforce", "four million"],
)
async def test_a_training_seats_at_most_the_enterprise_s_workforce(
    client: httpx.AsyncClient, participants: dict[str, Any], status: int
) -> None:
    enterprise, enrolment = await enrolled(client)  # 84 workers
    before = await appended(client)
    response = await client.post(
        f"/v1/enterprises/{enterprise}/trainings",
        json={"enrolment_id": enrolment, **participants},
        headers=STAFF,
    )
    assert response.status_code == status, response.text
    if status == 422:
        problem = response.json()
        assert problem["rule"] == "participants-within-workforce"
        assert refusal(response, "participants")["rule"] == "participants-within-workforce"
        assert "84" in problem["detail"]
        assert await appended(client) == before


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"name": "Deli\x00zia"}, "name", "no-control-characters"),
        ({"sector": "food\x1b[31m"}, "sector", "no-control-characters"),
        ({"chamber": "C\u0085NI"}, "chamber", "no-control-characters"),
        ({"registered_on": "0001-01-01"}, "registered_on", "date-before-programme"),
        ({"registered_on": "2012-12-31"}, "registered_on", "date-before-programme"),
        ({"registered_on": 0}, "registered_on", "date-type"),
        ({"registered_on": "9999-12-31"}, "registered_on", "date-in-future"),
        ({"workforce": {"women": "20", "men": 64}}, "workforce.women", "int_type"),
        ({"workforce": {"women": 20.0, "men": 64}}, "workforce.women", "int_type"),
        ({"workforce": {"women": True, "men": 64}}, "workforce.women", "int_type"),
    ],
)
async def test_implausible_registrations_are_refused_naming_field_and_rule(
    client: httpx.AsyncClient, change: dict[str, Any], field: str, rule: str
) -> None:
    response = await register(client, {**ENTERPRISE, **change})
    assert refusal(response, field)["rule"] == rule
    assert await appended(client) == 0


async def test_the_programme_start_is_a_setting(settings: Any, tmp_path: Any) -> None:
    from score_enrolment.main import build_app
    from score_testing.service import serving

    later = type(settings)(**{**settings.model_dump(), "programme_start": "2016-01-01"})
    async with serving(build_app(later)) as client:
        response = await register(client, {**ENTERPRISE, "registered_on": "2015-12-31"})
        assert "2016-01-01" in refusal(response, "registered_on")["reason"]
        response = await register(client, {**ENTERPRISE, "registered_on": "2016-01-01"})
        assert response.status_code == 201, response.text


async def test_a_version_beyond_any_on_an_unknown_enterprise_is_404_first(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        "/v1/enterprises/nobody/withdrawal",
        json={"reason": "closing"},
        headers=[*STAFF.items(), ("If-Match", b'"' + b"9" * 40 + b'"')],
    )
    assert response.status_code == 404, response.text


async def test_a_content_length_of_thousands_of_digits_is_too_large(
    client: httpx.AsyncClient,
) -> None:
    request = client.build_request(
        "POST",
        "/v1/enterprises",
        content=b"{}",
        headers={**STAFF, "Content-Type": "application/json"},
    )
    request.headers["Content-Length"] = "9" * 5000
    response = await client.send(request)
    assert response.status_code == 413, response.text
