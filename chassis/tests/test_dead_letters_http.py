"""`/v1/ops/dead-letters` of a service on the chassis: admin only, the payload out of listings,
retries answered with their outcome or the problem that refused them."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import dead_letters
from score_chassis.consumer import Subscription
from score_chassis.database import Database
from score_chassis.http.app import create_app
from score_chassis.runtime import Runtime
from score_chassis.settings import ServiceSettings
from score_chassis.tokens import Role
from score_contracts.envelope import Envelope
from score_contracts.events import Event, TrainerRegistered
from score_contracts.examples import example_envelope
from score_contracts.subjects import STREAMS
from score_testing.service import TEST_SECRET, bearer, serving
from score_testing.streams import wait_for

pytestmark = pytest.mark.nats

CONSUMER = "test-trainers"

trainers = sa.Table("test_trainers", sa.MetaData(), sa.Column("trainer_id", sa.String(36)))


async def project(conn: AsyncConnection, envelope: Envelope[Event]) -> None:
    assert isinstance(envelope.data, TrainerRegistered)
    await conn.execute(trainers.insert().values(trainer_id=envelope.data.trainer_id))


@pytest.fixture
async def service(
    tmp_path: Path, nats_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, Database]]:
    settings = ServiceSettings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'service.db'}",
        nats_url=nats_url,
        auth_secret=TEST_SECRET,
        log_format="console",
    )
    runtime = Runtime(
        settings,
        context="enrolment",
        subscriptions=[Subscription(CONSUMER, STREAMS["enrolment"], project)],
    )
    app = create_app(runtime, title="test", description="test", routers=[])
    async with serving(app) as client:
        async with runtime.database.transaction() as conn:
            await conn.run_sync(trainers.metadata.create_all)
        # A consumer stopped while it is still setting itself up on NATS can miss the
        # cancellation (nats-py's requests wait with asyncio.wait_for); let it be reading.
        await wait_for(lambda: runtime.consumer(CONSUMER).reading, within=10)
        yield client, runtime.database


def trainer_registered() -> Envelope[Event]:
    return example_envelope(
        TrainerRegistered(
            trainer_id="tra-dead-1",
            name="Ana Quispe",
            sex="female",
            country="bo",
            region="oruro",
            organisation="CEPB",
            registered_on=dt.date(2016, 1, 1),
        )
    )


async def letter(database: Database, payload: bytes, *, consumer: str = CONSUMER) -> int:
    async with database.transaction() as conn:
        return await dead_letters.record(
            conn,
            consumer=consumer,
            subject="score.bo.oruro.enrolment.trainer_registered.v1",
            event_id="0190a000-0000-7000-8000-000000000001",
            deliveries=5,
            error="handler failed 5 times: RuntimeError('no such region')",
            payload=payload,
            stream_sequence=7,
        )


ADMIN = bearer("admin")
OTHERS: tuple[Role, ...] = ("staff", "trainer", "chamber", "reader")


async def test_only_an_admin_may_see_or_touch_dead_letters(
    service: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = service
    letter_id = await letter(database, b"{not json")
    asks = [
        ("GET", "/v1/ops/dead-letters"),
        ("GET", f"/v1/ops/dead-letters/{letter_id}"),
        ("POST", f"/v1/ops/dead-letters/{letter_id}/retry"),
        ("POST", "/v1/ops/dead-letters/retry"),
        ("DELETE", f"/v1/ops/dead-letters/{letter_id}"),
    ]
    for method, path in asks:
        assert (await client.request(method, path)).status_code == 401, path
        for role in OTHERS:
            headers = bearer(role, regions=["oruro"] if role == "chamber" else ())
            answer = await client.request(method, path, headers=headers)
            assert answer.status_code == 403, (role, path)
            assert answer.headers["content-type"] == "application/problem+json"
    for method, path in asks:  # the last discards it
        answer = await client.request(method, path, headers=ADMIN)
        assert answer.status_code in {200, 204, 409}, (path, answer.text)


async def test_the_listing_leaves_the_payload_out_and_the_letter_by_its_id_has_it(
    service: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = service
    payload = trainer_registered().model_dump_json().encode()
    letter_id = await letter(database, payload)
    listed = await client.get("/v1/ops/dead-letters", headers=ADMIN)
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert "payload" not in item and "Ana Quispe" not in listed.text
    assert item["id"] == letter_id and item["consumer"] == CONSUMER
    assert item["event_type"] == "org.ilo.score.enrolment.trainer_registered.v1"
    assert item["deliveries"] == 5 and "no such region" in item["error"]
    assert listed.json()["next_cursor"] is None

    one = await client.get(f"/v1/ops/dead-letters/{letter_id}", headers=ADMIN)
    assert one.status_code == 200 and one.json()["payload"] == payload.decode()

    other = await client.get(
        "/v1/ops/dead-letters", params={"consumer": "someone-else"}, headers=ADMIN
    )
    assert other.json()["items"] == []
    bad = await client.get("/v1/ops/dead-letters", params={"limit": 0}, headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "limit"


async def test_an_unknown_id_is_404(service: tuple[httpx.AsyncClient, Database]) -> None:
    client, _ = service
    for method, path in [
        ("GET", "/v1/ops/dead-letters/999"),
        ("POST", "/v1/ops/dead-letters/999/retry"),
        ("DELETE", "/v1/ops/dead-letters/999"),
    ]:
        answer = await client.request(method, path, headers=ADMIN)
        assert answer.status_code == 404, path
        assert answer.json()["detail"] == "no dead letter with id 999"


async def test_a_retry_applies_the_event_and_the_letter_goes(
    service: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = service
    envelope = trainer_registered()
    letter_id = await letter(database, envelope.model_dump_json().encode())
    answer = await client.post(f"/v1/ops/dead-letters/{letter_id}/retry", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "retried"
    async with database.transaction(write=False) as conn:
        found = (await conn.execute(sa.select(trainers.c.trainer_id))).scalars().all()
    assert found == ["tra-dead-1"]
    assert (await client.get("/v1/ops/dead-letters", headers=ADMIN)).json()["items"] == []


async def test_a_retry_no_retry_can_help_is_409_naming_why(
    service: tuple[httpx.AsyncClient, Database],
) -> None:
    client, database = service
    unreadable = await letter(database, b"{not json")
    orphan = await letter(database, b"{}", consumer="retired-consumer")
    for letter_id, rule in [(unreadable, "unreadable-payload"), (orphan, "unknown-consumer")]:
        answer = await client.post(f"/v1/ops/dead-letters/{letter_id}/retry", headers=ADMIN)
        assert answer.status_code == 409
        assert answer.json()["rule"] == rule
        assert answer.headers["content-type"] == "application/problem+json"

    report = await client.post("/v1/ops/dead-letters/retry", headers=ADMIN)
    assert report.status_code == 200
    assert (report.json()["retried"], report.json()["refused"]) == (0, 2)
    only = await client.post(
        "/v1/ops/dead-letters/retry", params={"consumer": CONSUMER}, headers=ADMIN
    )
    assert [o["id"] for o in only.json()["outcomes"]] == [unreadable]

    metrics = (await client.get("/metrics")).text
    assert f'score_dead_letters_kept{{consumer="{CONSUMER}"}} 1.0' in metrics
    assert 'score_dead_letters_kept{consumer="retired-consumer"} 1.0' in metrics

    gone = await client.delete(f"/v1/ops/dead-letters/{orphan}", headers=ADMIN)
    assert gone.status_code == 204
    listed = (await client.get("/v1/ops/dead-letters", headers=ADMIN)).json()["items"]
    assert [item["id"] for item in listed] == [unreadable]


async def test_a_method_not_served_is_405_naming_those_that_are(
    service: tuple[httpx.AsyncClient, Database],
) -> None:
    client, _ = service
    answer = await client.put("/v1/ops/dead-letters/1", headers=ADMIN)
    assert answer.status_code == 405
    assert {m.strip() for m in answer.headers["allow"].split(",")} - {"HEAD"} == {"GET", "DELETE"}
    assert (await client.get("/v1/ops/dead-letters/retry", headers=ADMIN)).status_code == 422
