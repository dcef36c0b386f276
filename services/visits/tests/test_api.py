"""The visits API over HTTP: answers, problem details (final and not-known-yet refusals),
idempotency, concurrency, roles and regions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import score_visits.domain
from score_chassis.http.inputs import today
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    TrainerCertified,
    TrainerRegistered,
)
from score_contracts.examples import ENTERPRISE_ID, REGION, TRAINER_ID, example
from score_testing.decider import rules_named
from score_testing.service import bearer

Learn = Callable[..., Awaitable[None]]

TRAINER = bearer("trainer")
TODAY = today()  # the programme's date, as the service's defaults use

VISIT: dict[str, Any] = {
    "enterprise_id": ENTERPRISE_ID,
    "trainer_id": TRAINER_ID,
    "module": 1,
    "scheduled_for": TODAY.isoformat(),
}
COMPLETION: dict[str, Any] = {
    "duration_hours": "3.5",
    "improvements": [
        {"area": "Almacén de telas", "description": "5S: rollos clasificados por color"},
        {"area": "Comunicación interna", "description": "Pizarra de avisos y buzón"},
    ],
}


@pytest.fixture
async def known(learn: Learn) -> None:
    """The views know the example enterprise, enrolled in module 1, and its trainer,
    certified for modules 1 and 2."""
    await learn(
        example(EnterpriseRegistered),
        example(EnterpriseEnrolled),
        example(TrainerRegistered),
        example(TrainerCertified),
    )


async def schedule(client: httpx.AsyncClient, **changes: Any) -> str:
    response = await client.post("/v1/visits", json={**VISIT, **changes}, headers=TRAINER)
    assert response.status_code == 201, response.text
    assert response.json()["version"] == 1
    visit_id: str = response.json()["id"]
    return visit_id


@pytest.mark.usefixtures("known")
async def test_a_visit_is_scheduled_completed_and_read_back(client: httpx.AsyncClient) -> None:
    visit_id = await schedule(client)
    response = await client.post(
        f"/v1/visits/{visit_id}/completion", json=COMPLETION, headers=TRAINER
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"id": visit_id, "version": 2}

    response = await client.get(f"/v1/visits/{visit_id}", headers=bearer("reader"))
    assert response.status_code == 200
    assert response.headers["etag"] == '"2"'
    body = response.json()
    assert body["status"] == "completed"
    assert body["completed_on"] == TODAY.isoformat()
    assert body["duration_hours"] == "3.5"
    assert [i["area"] for i in body["improvements"]] == ["Almacén de telas", "Comunicación interna"]
    assert (await client.get("/readyz")).json()["checks"]["outbox_pending"] == 2


@pytest.mark.usefixtures("known")
async def test_an_enterprises_visits_are_listed_with_their_state(
    client: httpx.AsyncClient,
) -> None:
    first = await schedule(client, scheduled_for="2018-05-08")
    second = await schedule(client, scheduled_for="2018-05-22")
    cancelled = await client.post(
        f"/v1/visits/{second}/cancellation",
        json={"reason": "Paro de transporte"},
        headers=bearer("staff"),
    )
    assert cancelled.status_code == 200
    response = await client.get(
        "/v1/visits", params={"enterprise_id": ENTERPRISE_ID}, headers=bearer("reader")
    )
    assert response.status_code == 200
    listed = response.json()["visits"]
    assert [(v["id"], v["status"], v["version"]) for v in listed] == [
        (first, "scheduled", 1),
        (second, "cancelled", 2),
    ]
    assert listed[1]["cancelled_on"] == TODAY.isoformat()


async def test_an_enterprise_not_heard_of_is_409_not_known_yet_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/visits", json=VISIT, headers=TRAINER)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "1"
    problem = response.json()
    assert problem["type"].endswith("/problems/not-known-yet")
    assert problem["rule"] == "enterprise-not-known-yet"
    assert (await client.get("/readyz")).json()["checks"]["outbox_pending"] == 0


async def test_a_visit_refused_as_not_known_yet_is_accepted_once_the_fact_arrives(
    client: httpx.AsyncClient, learn: Learn
) -> None:
    await learn(example(EnterpriseRegistered), example(TrainerRegistered))
    refused = await client.post("/v1/visits", json=VISIT, headers=TRAINER)
    assert refused.json()["rule"] == "enrolment-not-known-yet"
    await learn(example(EnterpriseEnrolled))
    refused = await client.post("/v1/visits", json=VISIT, headers=TRAINER)
    assert refused.json()["rule"] == "certification-not-known-yet"
    await learn(example(TrainerCertified))
    await schedule(client)


@pytest.mark.usefixtures("known")
async def test_a_withdrawn_enterprise_is_a_final_409(
    client: httpx.AsyncClient, learn: Learn
) -> None:
    await learn(example(EnterpriseWithdrawn))
    response = await client.post("/v1/visits", json=VISIT, headers=TRAINER)
    assert response.status_code == 409
    assert "retry-after" not in response.headers
    assert response.json()["type"].endswith("/problems/refused")
    assert response.json()["rule"] == "enterprise-withdrawn"


@pytest.mark.usefixtures("known")
async def test_completion_rules_are_409_with_the_rule(client: httpx.AsyncClient) -> None:
    tomorrow = await schedule(client, scheduled_for=(TODAY + dt.timedelta(days=1)).isoformat())
    early = await client.post(f"/v1/visits/{tomorrow}/completion", json=COMPLETION, headers=TRAINER)
    assert early.status_code == 409
    assert early.json()["rule"] == "no-completion-before-scheduled-day"

    visit_id = await schedule(client)
    await client.post(f"/v1/visits/{visit_id}/cancellation", json={"reason": "x"}, headers=TRAINER)
    response = await client.post(
        f"/v1/visits/{visit_id}/completion", json=COMPLETION, headers=TRAINER
    )
    assert response.status_code == 409
    assert response.json()["rule"] == "no-completion-of-cancelled-visit"


@pytest.mark.usefixtures("known")
@pytest.mark.parametrize(
    ("first", "then", "rule"),
    [
        ("completion", "completion", "visit-already-completed"),
        ("cancellation", "cancellation", "visit-already-cancelled"),
        ("completion", "cancellation", "no-cancellation-of-completed-visit"),
    ],
)
async def test_a_visit_closed_once_is_not_closed_again(
    client: httpx.AsyncClient, first: str, then: str, rule: str
) -> None:
    bodies = {"completion": COMPLETION, "cancellation": {"reason": "strike"}}
    visit_id = await schedule(client)
    done = await client.post(f"/v1/visits/{visit_id}/{first}", json=bodies[first], headers=TRAINER)
    assert done.status_code == 200, done.text
    again = await client.post(f"/v1/visits/{visit_id}/{then}", json=bodies[then], headers=TRAINER)
    assert again.status_code == 409
    assert again.json()["rule"] == rule
    assert (await client.get(f"/v1/visits/{visit_id}", headers=TRAINER)).json()["version"] == 2


def test_every_rule_of_the_visit_decider_is_reached_by_a_test_over_http() -> None:
    rules = rules_named(Path(score_visits.domain.__file__))
    over_http = "".join(
        path.read_text("utf-8")
        for path in (Path(__file__), *Path(__file__).parents[3].glob("tests/integration/*.py"))
    )
    assert {rule for rule in rules if f'"{rule}"' not in over_http} == set()


async def test_an_unknown_visit_is_404(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/visits/nope", headers=TRAINER)).status_code == 404
    for action, body in (("completion", COMPLETION), ("cancellation", {"reason": "x"})):
        response = await client.post(f"/v1/visits/nope/{action}", json=body, headers=TRAINER)
        assert response.status_code == 404
        assert response.json()["type"].endswith("/problems/not-found")


@pytest.mark.usefixtures("known")
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"duration_hours": "0"}, "duration_hours"),
        ({"duration_hours": "25"}, "duration_hours"),
        ({"duration_hours": "1.234"}, "duration_hours"),
        ({"completed_on": "3018-01-01"}, "completed_on"),
        ({"improvements": [{"area": "", "description": "x"}]}, "improvements.0.area"),
        ({"improvements": [{"area": "5S", "description": "x", "who": "y"}]}, "improvements.0.who"),
        ({"colour": "blue"}, "colour"),
        ({"completed_on": 0}, "completed_on"),
        ({"completed_on": "2012-12-31"}, "completed_on"),
        ({"improvements": [{"area": "5S", "description": "a\x00b"}]}, "improvements.0.description"),
        ({"improvements": [{"area": "5\x07S", "description": "x"}]}, "improvements.0.area"),
    ],
)
async def test_bad_input_names_the_field_and_appends_nothing(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    visit_id = await schedule(client)
    response = await client.post(
        f"/v1/visits/{visit_id}/completion", json={**COMPLETION, **change}, headers=TRAINER
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert field in [error["field"] for error in response.json()["errors"]]
    assert (await client.get(f"/v1/visits/{visit_id}", headers=TRAINER)).json()["version"] == 1


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        ({"module": 6}, "module", "less_than_equal"),
        ({"enterprise_id": "a b"}, "enterprise_id", "string_pattern_mismatch"),
        ({"scheduled_for": "9999-12-31"}, "scheduled_for", "date-beyond-horizon"),
        ({"scheduled_for": "2012-06-01"}, "scheduled_for", "date-before-programme"),
        ({"scheduled_for": 20180601}, "scheduled_for", "date-type"),
    ],
)
async def test_a_bad_schedule_names_the_field_and_the_rule(
    client: httpx.AsyncClient, change: dict[str, Any], field: str, rule: str
) -> None:
    response = await client.post("/v1/visits", json={**VISIT, **change}, headers=TRAINER)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [(error["field"], error["rule"]) for error in errors] == [(field, rule)]


async def test_a_visit_may_be_planned_up_to_the_horizon(client: httpx.AsyncClient) -> None:
    # Accepted as input: the refusal that follows is the domain's (nothing is known yet).
    ahead = (TODAY + dt.timedelta(days=366)).isoformat()
    response = await client.post(
        "/v1/visits", json={**VISIT, "scheduled_for": ahead}, headers=TRAINER
    )
    assert response.status_code == 409, response.text


@pytest.mark.usefixtures("known")
async def test_a_retried_request_returns_the_first_answer_and_appends_nothing(
    client: httpx.AsyncClient,
) -> None:
    headers = {**TRAINER, "Idempotency-Key": "visit-chiquitanas-1"}
    first = await client.post("/v1/visits", json=VISIT, headers=headers)
    again = await client.post("/v1/visits", json=VISIT, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    query = {"enterprise_id": ENTERPRISE_ID}
    listed = await client.get("/v1/visits", params=query, headers=TRAINER)
    assert len(listed.json()["visits"]) == 1


@pytest.mark.usefixtures("known")
async def test_a_stale_if_match_is_412_and_appends_nothing(client: httpx.AsyncClient) -> None:
    visit_id = await schedule(client)
    response = await client.post(
        f"/v1/visits/{visit_id}/cancellation",
        json={"reason": "x"},
        headers={**TRAINER, "If-Match": '"2"'},
    )
    assert response.status_code == 412
    response = await client.post(
        f"/v1/visits/{visit_id}/cancellation",
        json={"reason": "x"},
        headers={**TRAINER, "If-Match": '"1"'},
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2


async def test_roles(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/visits", json=VISIT)).status_code == 401
    for role in ("reader", "chamber"):
        headers = bearer(role, regions=[REGION] if role == "chamber" else [])
        response = await client.post("/v1/visits", json=VISIT, headers=headers)
        assert response.status_code == 403, role
    for role in ("trainer", "staff", "admin"):
        response = await client.post("/v1/visits", json=VISIT, headers=bearer(role))
        assert response.status_code == 409, role  # admitted, and the enterprise is unknown
    ops = await client.get("/v1/ops/replay/views", headers=bearer("staff"))
    assert ops.status_code == 403


@pytest.mark.usefixtures("known")
async def test_a_chamber_sees_only_its_regions_visits(client: httpx.AsyncClient) -> None:
    visit_id = await schedule(client)
    own = bearer("chamber", regions=[REGION])
    foreign = bearer("chamber", regions=["la_paz"])
    assert (await client.get(f"/v1/visits/{visit_id}", headers=own)).status_code == 200
    assert (await client.get(f"/v1/visits/{visit_id}", headers=foreign)).status_code == 404
    query = {"enterprise_id": ENTERPRISE_ID}
    assert len((await client.get("/v1/visits", params=query, headers=own)).json()["visits"]) == 1
    assert (await client.get("/v1/visits", params=query, headers=foreign)).json()["visits"] == []


async def test_replay_needs_nats(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/ops/replay/views", headers=bearer("admin"))
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"


async def test_the_openapi_document_names_the_rules_and_retry_after(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    schedule_409 = document["paths"]["/v1/visits"]["post"]["responses"]["409"]
    for rule in (
        "enterprise-withdrawn",
        "enterprise-not-known-yet",
        "enrolment-not-known-yet",
        "trainer-not-known-yet",
        "certification-not-known-yet",
        "views-rebuilding-not-known-yet",
    ):
        assert f"`{rule}`" in schedule_409["description"]
    assert "Retry-After" in schedule_409["headers"]
    completion = document["paths"]["/v1/visits/{visit_id}/completion"]["post"]["responses"]
    assert {"404", "409", "412", "422"} <= set(completion)
    assert "`views-rebuilding-not-known-yet`" in completion["409"]["description"]
    reads = document["paths"]["/v1/visits/{visit_id}"]["get"]["responses"]
    assert "409" not in reads and "412" not in reads


@pytest.mark.usefixtures("known")
async def test_a_retried_completion_returns_the_first_answer_with_its_status(
    client: httpx.AsyncClient,
) -> None:
    visit_id = await schedule(client)
    headers = {**TRAINER, "Idempotency-Key": "complete-once"}
    url = f"/v1/visits/{visit_id}/completion"
    first = await client.post(url, json=COMPLETION, headers=headers)
    again = await client.post(url, json=COMPLETION, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"


@pytest.mark.usefixtures("known")
async def test_a_trainer_schedules_and_closes_their_own_visits_only(
    client: httpx.AsyncClient,
) -> None:
    someone_else = bearer("trainer", trainer_id="another-trainer")
    visit = {"enterprise_id": ENTERPRISE_ID, "trainer_id": TRAINER_ID, "module": 1}
    refused = await client.post("/v1/visits", json=visit, headers=someone_else)
    assert refused.status_code == 403
    visit_id = await schedule(client)
    for action, body in (("completion", COMPLETION), ("cancellation", {"reason": "strike"})):
        response = await client.post(
            f"/v1/visits/{visit_id}/{action}", json=body, headers=someone_else
        )
        assert response.status_code == 403, action
    staff = await client.post(
        f"/v1/visits/{visit_id}/completion", json=COMPLETION, headers=bearer("staff")
    )
    assert staff.status_code == 200
