"""Every endpoint of every service, asked by every role and by every kind of bad token: the
status the table below says, and a chamber asking for another region's records gets 403 or
404, never the records.

The endpoints are read from each service's own OpenAPI document, and the table must name
exactly those: an endpoint added without saying who may call it fails here. Each service runs
in uvicorn on a real nats-server, so that a token revoked by the operator is one the service
learnt of from the revocation bucket it watches.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Final

import httpx
import jwt
import pytest
from fastapi import FastAPI

from score_chassis.jetstream import NatsConnection
from score_chassis.tokens import ALGORITHM, ISSUER, ROLES, Role, TokenAuthority, revoke
from score_enrolment.main import build_app as enrolment_app
from score_enrolment.settings import EnrolmentSettings
from score_indicators.main import build_app as indicators_app
from score_indicators.settings import IndicatorsSettings
from score_notifications.main import build_app as notifications_app
from score_notifications.settings import NotificationsSettings
from score_testing.browser import served
from score_testing.service import TEST_SECRET, bearer
from score_testing.streams import wait_for
from score_visits.main import build_app as visits_app
from score_visits.settings import VisitsSettings

pytestmark = [pytest.mark.nats, pytest.mark.timeout(240)]

PUBLIC: Final = frozenset[Role]()
"""Answered without a token: health, metrics, the documents, the dashboard's page."""
EVERYONE: Final = frozenset(ROLES)
WRITERS: Final = frozenset[Role]({"admin", "staff"})
VISITORS: Final = frozenset[Role]({"admin", "staff", "trainer"})
MANAGERS: Final = frozenset[Role]({"admin", "chamber"})
ADMIN: Final = frozenset[Role]({"admin"})

OPERATIONS: Final = {
    "GET /healthz": PUBLIC,
    "GET /readyz": PUBLIC,
    "GET /asyncapi": PUBLIC,
    "GET /metrics": PUBLIC,
    "GET /schemas/{context}/{name}": PUBLIC,
    "GET /problems/{slug}": PUBLIC,
    "GET /v1/ops/dead-letters": ADMIN,
    "POST /v1/ops/dead-letters/retry": ADMIN,
    "GET /v1/ops/dead-letters/{letter_id}": ADMIN,
    "DELETE /v1/ops/dead-letters/{letter_id}": ADMIN,
    "POST /v1/ops/dead-letters/{letter_id}/retry": ADMIN,
}
"""What every service serves, from the chassis."""

EXPECTED: Final[dict[str, dict[str, frozenset[Role]]]] = {
    "enrolment": {
        **OPERATIONS,
        "POST /v1/enterprises": WRITERS,
        "GET /v1/enterprises": EVERYONE,
        "PATCH /v1/enterprises/{enterprise_id}": WRITERS,
        "GET /v1/enterprises/{enterprise_id}": EVERYONE,
        "POST /v1/enterprises/{enterprise_id}/enrolments": WRITERS,
        "POST /v1/enterprises/{enterprise_id}/trainings": WRITERS,
        "POST /v1/enterprises/{enterprise_id}/payments": WRITERS,
        "POST /v1/enterprises/{enterprise_id}/completions": WRITERS,
        "POST /v1/enterprises/{enterprise_id}/withdrawal": WRITERS,
        "POST /v1/enterprises/{enterprise_id}/case-studies": WRITERS,
        "POST /v1/trainers": WRITERS,
        "GET /v1/trainers/{trainer_id}": EVERYONE,
        "POST /v1/trainers/{trainer_id}/certifications": WRITERS,
    },
    "visits": {
        **OPERATIONS,
        "POST /v1/visits": VISITORS,
        "GET /v1/visits": EVERYONE,
        "POST /v1/visits/{visit_id}/completion": VISITORS,
        "POST /v1/visits/{visit_id}/cancellation": VISITORS,
        "GET /v1/visits/{visit_id}": EVERYONE,
        "GET /v1/ops/replay/views": ADMIN,
        "POST /v1/ops/replay/views": ADMIN,
    },
    "indicators": {
        **OPERATIONS,
        "GET /": PUBLIC,
        "GET /v1/indicators": EVERYONE,
        "GET /v1/indicators/monthly": EVERYONE,
        "GET /v1/indicators/changes": EVERYONE,
        "GET /v1/targets": EVERYONE,
        "GET /v1/phases": EVERYONE,
        "GET /v1/milestones": EVERYONE,
        "GET /v1/ops/replay/projection": ADMIN,
        "POST /v1/ops/replay/projection": ADMIN,
    },
    "notifications": {
        **OPERATIONS,
        "GET /v1/subscriptions": MANAGERS,
        "POST /v1/subscriptions": MANAGERS,
        "GET /v1/subscriptions/{subscription_id}": MANAGERS,
        "DELETE /v1/subscriptions/{subscription_id}": MANAGERS,
        "GET /v1/deliveries": MANAGERS,
    },
}

CHAMBER_REGION: Final = "potosi"
"""The region the matrix's chamber is bound to; it asks for that region where it names one."""
OTHER_KEY: Final = "another-key-that-signs-tokens-nobody-accepts-0123456789"
NOT_AUTHENTICATED: Final = (
    "no token",
    "a malformed token",
    "a token signed with another key",
    "alg none",
    "an expired token",
    "a revoked token",
)


def settings_of(service: str, tmp_path: Path, nats_url: str) -> Any:
    common: dict[str, Any] = {
        "database_url": f"sqlite+aiosqlite:///{tmp_path / f'{service}.db'}",
        "nats_url": nats_url,
        "auth_secret": TEST_SECRET,
        "log_format": "console",
    }
    match service:
        case "enrolment":
            return EnrolmentSettings(**common)
        case "visits":
            return VisitsSettings(**common)
        case "indicators":
            return IndicatorsSettings(**common)
        case _:
            return NotificationsSettings(
                **common, notifications_secret_key="test-key-for-the-webhook-secrets-0123456789"
            )


BUILDERS: Final[dict[str, Callable[[Any], FastAPI]]] = {
    "enrolment": enrolment_app,
    "visits": visits_app,
    "indicators": indicators_app,
    "notifications": notifications_app,
}


@pytest.fixture
async def operator(nats_url: str) -> AsyncIterator[NatsConnection]:
    connection = NatsConnection(nats_url, name="score-cli")
    connection.start()
    await wait_for(connection.ready.is_set, within=10)
    yield connection
    await connection.close()


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`METHOD /path` → the operation, for each operation of an OpenAPI document (the
    schemas' path written with a `{context}` for the context's own name)."""
    found = {}
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            generic = re.sub(r"^/schemas/[a-z]+/", "/schemas/{context}/", path)
            found[f"{method.upper()} {generic}"] = {**operation, "path": path}
    return found


def request_for(operation: dict[str, Any], method: str, role: Role | None) -> dict[str, Any]:
    """A request of the operation: ids no record has, an empty body, and the chamber's own
    region wherever a region may be named (so that a refusal is of the role, not the scope)."""
    path = re.sub(r"\{letter_id\}", "1", operation["path"])
    path = re.sub(r"\{name\}", "enterprise_registered.v1.json", path)
    path = re.sub(r"\{slug\}", "refused", path)
    path = re.sub(r"\{[a-z_]+\}", "nobody", path)
    names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    params = {"region": CHAMBER_REGION} if "region" in names and role == "chamber" else {}
    body = {"json": {}} if "requestBody" in operation else {}
    return {"method": method, "url": path, "params": params, **body}


def token_of(role: Role) -> dict[str, str]:
    regions = [CHAMBER_REGION] if role == "chamber" else []
    return bearer(role, regions=regions)


def bad_tokens(revoked: str) -> dict[str, dict[str, str]]:
    now = dt.datetime.now(dt.UTC)
    claims = {
        "iss": ISSUER,
        "sub": "admin:forged",
        "jti": "forged",
        "iat": now - dt.timedelta(hours=2),
        "exp": now - dt.timedelta(hours=1),
        "role": "admin",
        "regions": [],
    }
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    unsigned_claims = {**claims, "exp": now + dt.timedelta(hours=1)}
    payload = base64.urlsafe_b64encode(json.dumps(unsigned_claims, default=str).encode())
    unsigned = f"{header.decode().rstrip('=')}.{payload.decode().rstrip('=')}."
    return {
        "no token": {},
        "a malformed token": {"Authorization": "Bearer not.a-token"},
        "a token signed with another key": bearer("admin", secret=OTHER_KEY),
        "alg none": {"Authorization": f"Bearer {unsigned}"},
        "an expired token": {
            "Authorization": f"Bearer {jwt.encode(claims, TEST_SECRET, algorithm=ALGORITHM)}"
        },
        "a revoked token": {"Authorization": f"Bearer {revoked}"},
    }


async def answer(client: httpx.AsyncClient, request: dict[str, Any], headers: Any) -> int:
    """The status only: a stream of changes is left once its head is read."""
    async with client.stream(**request, headers=headers) as response:
        return response.status_code


@pytest.mark.parametrize("service", list(EXPECTED))
async def test_every_endpoint_answers_each_role_and_each_bad_token_as_the_table_says(
    service: str, tmp_path: Path, nats_url: str, operator: NatsConnection
) -> None:
    app = BUILDERS[service](settings_of(service, tmp_path, nats_url))
    found = operations(app.openapi())
    assert set(found) == set(EXPECTED[service]), "the table names each endpoint, and only those"

    authority = TokenAuthority(TEST_SECRET)
    revoked = authority.issue("admin")
    cells: list[tuple[str, str, int]] = []
    async with served(app) as server:
        await revoke(operator, authority.verify(revoked).token_id)
        await wait_for(lambda: authority.verify(revoked).token_id in app.state.revocations)
        async with httpx.AsyncClient(base_url=server.url, trust_env=False, timeout=30) as client:
            for key, operation in found.items():
                method = key.split()[0]
                admitted = EXPECTED[service][key]
                for role in ROLES:
                    request = request_for(operation, method, role)
                    cells.append((key, role, await answer(client, request, token_of(role))))
                for name, headers in bad_tokens(revoked).items():
                    request = request_for(operation, method, None)
                    cells.append((key, name, await answer(client, request, headers)))

    wrong = []
    for key, caller, status in cells:
        admitted = EXPECTED[service][key]
        if not admitted:
            expected_ok = status < 400 or status in {404, 422}  # public: no token asked for
        elif caller in NOT_AUTHENTICATED:
            expected_ok = status == 401
        elif caller in admitted:
            expected_ok = status not in {401, 403} and status < 500
        else:
            expected_ok = status == 403
        if not expected_ok:
            wrong.append((key, caller, status))
    assert wrong == [], wrong
    assert len(cells) == len(found) * (len(ROLES) + len(NOT_AUTHENTICATED))
    print(f"{service}: {len(found)} endpoints, {len(cells)} cells checked")


# A chamber and another region's records.

LA_PAZ_ENTERPRISE: Final[dict[str, Any]] = {
    "name": "Textiles Illimani S.R.L.",
    "tax_id": "7788990011",
    "region": "la_paz",
    "sector": "textiles",
    "chamber": "Cámara Nacional de Industrias",
    "workforce": {"women": 30, "men": 25},
    "registered_on": "2016-05-02",
}
LA_PAZ_CHAMBER: Final = bearer("chamber", regions=["la_paz"])
POTOSI_CHAMBER: Final = bearer("chamber", regions=[CHAMBER_REGION])
STAFF: Final = bearer("staff")
ADMIN_TOKEN: Final = bearer("admin")


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=STAFF)
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def refused(response: httpx.Response, *secrets: str) -> bool:
    """A 403 or a 404 that says nothing of the record."""
    return response.status_code in {403, 404} and not any(s in response.text for s in secrets)


async def test_a_chamber_gets_403_or_404_for_another_regions_records_never_the_records(
    tmp_path: Path, nats_url: str
) -> None:
    apps = {name: build(settings_of(name, tmp_path, nats_url)) for name, build in BUILDERS.items()}
    apps["notifications"] = notifications_app(
        settings_of("notifications", tmp_path, nats_url).model_copy(
            update={"webhook_allowed_hosts": "127.0.0.1", "notifications_retry_schedule": "0.1"}
        )
    )
    async with (
        served(apps["enrolment"]) as enrolment_server,
        served(apps["visits"]) as visits_server,
        served(apps["indicators"]) as indicators_server,
        served(apps["notifications"]) as notifications_server,
        httpx.AsyncClient(base_url=enrolment_server.url, trust_env=False) as enrolment,
        httpx.AsyncClient(base_url=visits_server.url, trust_env=False) as visits,
        httpx.AsyncClient(base_url=indicators_server.url, trust_env=False) as indicators,
        httpx.AsyncClient(base_url=notifications_server.url, trust_env=False) as notifications,
    ):
        # La Paz: an enterprise trained (a milestone of the region), a trainer, and the La Paz
        # chamber's subscription, whose webhook nobody answers (deliveries are recorded).
        subscription = await notifications.post(
            "/v1/subscriptions",
            json={
                "chamber": "Cámara Nacional de Industrias",
                "regions": ["la_paz"],
                "channel": {"kind": "webhook", "url": "http://127.0.0.1:9/hooks"},
            },
            headers=LA_PAZ_CHAMBER,
        )
        assert subscription.status_code == 201, subscription.text
        subscription_id = subscription.json()["id"]
        enterprise = (await created(enrolment, "/v1/enterprises", LA_PAZ_ENTERPRISE))["id"]
        enrolment_id = (
            await created(
                enrolment,
                f"/v1/enterprises/{enterprise}/enrolments",
                {"module": 1, "delivery": "direct", "delivery_cost": {"amount": "4000"}},
            )
        )["enrolment_id"]
        await created(
            enrolment,
            f"/v1/enterprises/{enterprise}/trainings",
            {
                "enrolment_id": enrolment_id,
                "managers": {"women": 1, "men": 1},
                "workers": {"women": 2, "men": 2},
            },
        )
        trainer = (
            await created(
                enrolment,
                "/v1/trainers",
                {"name": "Ana Quispe", "sex": "female", "region": "la_paz", "organisation": "CNI"},
            )
        )["id"]

        await created(
            enrolment,
            f"/v1/trainers/{trainer}/certifications",
            {"modules": [1], "level": "trainer"},
        )

        async def scheduled() -> str | None:
            # Retried while the visits service has not heard of the enterprise or the
            # certification yet (409 not known yet).
            response = await visits.post(
                "/v1/visits",
                json={"enterprise_id": enterprise, "trainer_id": trainer, "module": 1},
                headers={**STAFF, "Idempotency-Key": "the-la-paz-visit"},
            )
            visit_id: str | None = response.json()["id"] if response.status_code == 201 else None
            return visit_id

        visit = await wait_for(scheduled, within=60, interval=0.5)

        async def delivered() -> list[dict[str, Any]]:
            response = await notifications.get(
                "/v1/deliveries", params={"subscription_id": subscription_id}, headers=ADMIN_TOKEN
            )
            items: list[dict[str, Any]] = response.json()["items"]
            return items

        await wait_for(delivered, within=60)  # the milestone reached La Paz's subscription
        milestones = await indicators.get("/v1/milestones", headers=LA_PAZ_CHAMBER)
        assert any(m["scope"] == "la_paz" for m in milestones.json()["milestones"]), milestones.text

        names = (LA_PAZ_ENTERPRISE["name"], LA_PAZ_ENTERPRISE["tax_id"], "Ana Quispe")
        asked = {
            "the enterprise": await enrolment.get(
                f"/v1/enterprises/{enterprise}", headers=POTOSI_CHAMBER
            ),
            "the region's enterprises": await enrolment.get(
                "/v1/enterprises", params={"region": "la_paz"}, headers=POTOSI_CHAMBER
            ),
            "the trainer": await enrolment.get(f"/v1/trainers/{trainer}", headers=POTOSI_CHAMBER),
            "the visit": await visits.get(f"/v1/visits/{visit}", headers=POTOSI_CHAMBER),
            "the region's indicators": await indicators.get(
                "/v1/indicators", params={"region": "la_paz"}, headers=POTOSI_CHAMBER
            ),
            "the national indicators": await indicators.get(
                "/v1/indicators", headers=POTOSI_CHAMBER
            ),
            "the region's months": await indicators.get(
                "/v1/indicators/monthly", params={"region": "la_paz"}, headers=POTOSI_CHAMBER
            ),
            "the region's export": await indicators.get(
                "/v1/indicators",
                params={"region": "la_paz", "format": "csv"},
                headers=POTOSI_CHAMBER,
            ),
            "the region's targets": await indicators.get(
                "/v1/targets", params={"region": "la_paz"}, headers=POTOSI_CHAMBER
            ),
            "the region's milestones": await indicators.get(
                "/v1/milestones", params={"region": "la_paz"}, headers=POTOSI_CHAMBER
            ),
            "the subscription": await notifications.get(
                f"/v1/subscriptions/{subscription_id}", headers=POTOSI_CHAMBER
            ),
            "the subscription's deliveries": await notifications.get(
                "/v1/deliveries",
                params={"subscription_id": subscription_id},
                headers=POTOSI_CHAMBER,
            ),
            "the subscription, deleted": await notifications.delete(
                f"/v1/subscriptions/{subscription_id}", headers=POTOSI_CHAMBER
            ),
        }
        wrong = {
            what: (r.status_code, r.text[:200])
            for what, r in asked.items()
            if not refused(r, *names)
        }
        assert wrong == {}

        # What the chamber may list leaves the other region out.
        own = {
            "enterprises": await enrolment.get("/v1/enterprises", headers=POTOSI_CHAMBER),
            "milestones": await indicators.get("/v1/milestones", headers=POTOSI_CHAMBER),
            "subscriptions": await notifications.get("/v1/subscriptions", headers=POTOSI_CHAMBER),
            "an export": await indicators.get(
                "/v1/indicators", params={"format": "csv"}, headers=POTOSI_CHAMBER
            ),
        }
        for what, response in own.items():
            assert response.status_code == 200, (what, response.text)
            for secret in ("la_paz", enterprise, visit, subscription_id):
                assert secret not in response.text, (what, secret)
        # Asked by the enterprise's id, which it names back: none of its visits.
        theirs = await visits.get(
            "/v1/visits", params={"enterprise_id": enterprise}, headers=POTOSI_CHAMBER
        )
        assert theirs.status_code in {200, 403, 404} and visit not in theirs.text, theirs.text
        if theirs.status_code == 200:
            assert theirs.json()["visits"] == []
        assert (await delivered()) and (
            await notifications.get(f"/v1/subscriptions/{subscription_id}", headers=ADMIN_TOKEN)
        ).status_code == 200  # the refused delete deleted nothing
