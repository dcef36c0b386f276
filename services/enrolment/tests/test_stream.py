"""What reaches `SCORE_ENROLMENT` on a real nats-server: every event of the context, on its
region's subject, in an envelope that validates against its committed JSON Schema. And a
token revoked in the shared bucket stops working."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI
from jsonschema import Draft202012Validator, FormatChecker
from nats.js.errors import NotFoundError

from score_chassis.tokens import TokenAuthority, revoke
from score_contracts.events import BY_TYPE, CATALOGUE
from score_contracts.schemas import SCHEMAS_DIR
from score_contracts.subjects import STREAMS
from score_enrolment.main import build_app
from score_enrolment.settings import EnrolmentSettings
from score_testing.nats import free_port
from score_testing.service import TEST_SECRET, serving
from score_testing.streams import wait_for

pytestmark = pytest.mark.nats

STREAM = STREAMS["enrolment"].name
ENROLMENT_EVENTS = [cls for cls in CATALOGUE if cls.context == "enrolment"]


@pytest.fixture
def app(settings: EnrolmentSettings, nats_url: str) -> FastAPI:
    return build_app(settings.model_copy(update={"nats_url": nats_url}))


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(app) as client:
        yield client


async def published(url: str) -> list[tuple[str, dict[str, str], dict[str, Any]]]:
    """Every message of the stream as (subject, headers, body)."""
    connection = await nats.connect(url)
    try:
        js = connection.jetstream()
        try:
            info = await js.stream_info(STREAM)
        except NotFoundError:  # the service has not provisioned it yet
            return []
        messages = [await js.get_msg(STREAM, seq) for seq in range(1, info.state.last_seq + 1)]
        return [(m.subject, dict(m.headers or {}), json.loads(m.data or b"{}")) for m in messages]
    finally:
        await connection.close()


async def every_enrolment_event(client: httpx.AsyncClient, staff: dict[str, str]) -> None:
    """One of each event of the context, through the API: a Santa Cruz enterprise trained by
    a Cochabamba trainer."""

    async def write(path: str, body: dict[str, Any], method: str = "POST") -> dict[str, Any]:
        response = await client.request(method, path, json=body, headers=staff)
        assert response.is_success, response.text
        answer: dict[str, Any] = response.json()
        return answer

    trainer = (
        await write(
            "/v1/trainers",
            {
                "name": "María Choque Mamani",
                "sex": "female",
                "region": "cochabamba",
                "organisation": "CDIC",
                "registered_on": "2017-11-20",
            },
        )
    )["id"]
    await write(
        f"/v1/trainers/{trainer}/certifications",
        {"modules": [1, 2], "level": "expert", "certified_on": "2018-02-23"},
    )
    enterprise = (
        await write(
            "/v1/enterprises",
            {
                "name": "Confecciones Chiquitanas S.R.L.",
                "tax_id": "1028547021",
                "region": "santa_cruz",
                "sector": "Textiles y confecciones",
                "chamber": "CAINCO",
                "workforce": {"women": 46, "men": 19},
                "registered_on": "2018-03-05",
            },
        )
    )["id"]
    at = f"/v1/enterprises/{enterprise}"
    enrolment = (
        await write(
            f"{at}/enrolments",
            {
                "module": 1,
                "delivery": "partner",
                "partner": "CAINCO",
                "delivery_cost": {"amount": "5600.00"},
                "enrolled_on": "2018-03-12",
            },
        )
    )["enrolment_id"]
    await write(
        f"{at}/trainings",
        {
            "enrolment_id": enrolment,
            "trained_on": "2018-04-10",
            "trainer_id": trainer,
            "managers": {"women": 1, "men": 1},
            "workers": {"women": 2, "men": 0},
        },
    )
    await write(
        f"{at}/payments",
        {
            "enrolment_id": enrolment,
            "amount": {"amount": "2800.00"},
            "paid_on": "2018-04-16",
            "payer": "enterprise",
        },
    )
    await write(f"{at}/completions", {"enrolment_id": enrolment, "completed_on": "2018-07-02"})
    await write(at, {"workforce": {"women": 51, "men": 19}, "corrected_on": "2018-09-03"}, "PATCH")
    await write(
        f"{at}/case-studies",
        {
            "title": "Confecciones Chiquitanas: 5S en el almacén de telas",
            "url": "https://score.example.org/bo/casos/confecciones-chiquitanas",
            "published_on": "2018-10-15",
        },
    )
    await write(
        f"{at}/withdrawal",
        {"reason": "Cambio de propietarios", "withdrawn_on": "2019-02-18"},
    )


async def test_every_enrolment_event_is_published_valid_on_its_subject(
    client: httpx.AsyncClient, nats_url: str
) -> None:
    staff = {"Authorization": f"Bearer {TokenAuthority(TEST_SECRET).issue('staff')}"}
    await every_enrolment_event(client, staff)

    async def all_published() -> list[tuple[str, dict[str, str], dict[str, Any]]] | None:
        messages = await published(nats_url)
        return messages if len(messages) == len(ENROLMENT_EVENTS) else None

    messages = await wait_for(all_published, within=15)
    assert {body["type"] for _, _, body in messages} == {c.event_type() for c in ENROLMENT_EVENTS}
    for subject, headers, body in messages:
        cls = BY_TYPE[body["type"]]
        schema = json.loads((SCHEMAS_DIR / cls.schema_path()).read_text("utf-8"))
        Draft202012Validator(schema, format_checker=FormatChecker()).validate(body)
        region = "cochabamba" if cls.aggregate == "trainer" else "santa_cruz"
        assert subject == f"score.bo.{region}.enrolment.{cls.event_name}.v1"
        assert headers["Nats-Msg-Id"] == body["id"]
        assert body["source"] == "/score/bo/enrolment"
        assert body["subject"] == f"{cls.aggregate}/{body['data'][f'{cls.aggregate}_id']}"
    versions = [body["streamversion"] for _, _, body in messages if "enterprise" in body["subject"]]
    assert versions == list(range(1, len(versions) + 1))


async def test_a_revoked_token_is_refused(client: httpx.AsyncClient, app: FastAPI) -> None:
    authority = TokenAuthority(TEST_SECRET)
    token = authority.issue("reader")
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/v1/enterprises", headers=headers)).status_code == 200
    runtime = app.state.runtime
    await wait_for(runtime.nats.ready.is_set)
    await revoke(runtime.nats, authority.verify(token).token_id)

    async def refused() -> bool:
        return (await client.get("/v1/enterprises", headers=headers)).status_code == 401

    await wait_for(refused)
    other = {"Authorization": f"Bearer {authority.issue('reader')}"}
    assert (await client.get("/v1/enterprises", headers=other)).status_code == 200


async def test_a_revoked_token_stays_refused_after_a_restart_without_nats(
    settings: EnrolmentSettings, client: httpx.AsyncClient, app: FastAPI
) -> None:
    authority = TokenAuthority(TEST_SECRET)
    token = authority.issue("reader")
    headers = {"Authorization": f"Bearer {token}"}
    runtime = app.state.runtime
    await wait_for(runtime.nats.ready.is_set)
    await revoke(runtime.nats, authority.verify(token).token_id)

    async def refused() -> bool:
        return (await client.get("/v1/enterprises", headers=headers)).status_code == 401

    await wait_for(refused)
    # The same database, restarted while NATS is unreachable.
    offline = settings.model_copy(update={"nats_url": f"nats://127.0.0.1:{free_port()}"})
    async with serving(build_app(offline)) as restarted:
        assert (await restarted.get("/v1/enterprises", headers=headers)).status_code == 401


PERSONAL = (
    "María Choque Mamani",
    "Confecciones Chiquitanas S.R.L.",
    "1028547021",
    "Chiquitanas SA",
)


async def test_the_stream_carries_no_personal_data_that_staff_still_read(
    client: httpx.AsyncClient, nats_url: str
) -> None:
    staff = {"Authorization": f"Bearer {TokenAuthority(TEST_SECRET).issue('staff')}"}
    await every_enrolment_event(client, staff)
    listed = (await client.get("/v1/enterprises", headers=staff)).json()["items"]
    enterprise = listed[0]["id"]
    renamed = await client.patch(
        f"/v1/enterprises/{enterprise}", json={"name": "Chiquitanas SA"}, headers=staff
    )
    assert renamed.status_code == 200, renamed.text

    async def all_published() -> list[tuple[str, dict[str, str], dict[str, Any]]] | None:
        messages = await published(nats_url)
        return messages if len(messages) == len(ENROLMENT_EVENTS) + 1 else None

    messages = await wait_for(all_published, within=15)
    raw = json.dumps([body for _, _, body in messages], ensure_ascii=False)
    for value in PERSONAL:
        assert value not in raw
    correction = [b for _, _, b in messages if b["type"].endswith("details_corrected.v1")][-1]
    changed = {field for field, value in correction["data"].items() if value is not None}
    assert changed == {"enterprise_id", "corrected_on"}
    # The store keeps them, and the API shows them to staff, and to staff only.
    shown = (await client.get(f"/v1/enterprises/{enterprise}", headers=staff)).json()
    assert (shown["name"], shown["tax_id"]) == ("Chiquitanas SA", "1028547021")
    reader = {"Authorization": f"Bearer {TokenAuthority(TEST_SECRET).issue('reader')}"}
    hidden = (await client.get(f"/v1/enterprises/{enterprise}", headers=reader)).text
    for value in PERSONAL:
        assert value not in hidden
