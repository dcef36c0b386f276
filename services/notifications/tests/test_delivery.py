"""Notifications end to end on a real nats-server: `milestone_reached` published on
`SCORE_INDICATORS`, webhooks received and verified by a local receiver, mail by a local SMTP
server, and what became of each read back from the API and from `SCORE_NOTIFICATIONS`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from score_chassis.tables import dead_letters, inbox
from score_contracts.examples import example_envelope
from score_notifications.main import build_app
from score_notifications.routing import DURABLE
from score_notifications.sealing import Sealer
from score_testing.service import serving
from score_testing.streams import stream_messages, wait_for

from .conftest import (
    ADMIN,
    Receiver,
    SmtpServer,
    announce,
    deliveries_of,
    milestone,
    settings,
    subscribe,
    webhook_to,
)

pytestmark = pytest.mark.nats

Service = tuple[FastAPI, httpx.AsyncClient]
DELIVERED = "org.ilo.score.notifications.notification_delivered.v1"
FAILED = "org.ilo.score.notifications.notification_failed.v1"


@pytest.fixture
async def service(tmp_path: Path, nats_url: str, database_url: str) -> AsyncIterator[Service]:
    """The app on SQLite and on PostgreSQL, on a real nats-server."""
    app = build_app(settings(tmp_path, nats_url, database_url=database_url))
    async with serving(app) as client:
        yield app, client


async def published(nats_url: str, kind: str) -> list[dict[str, Any]]:
    return [
        body["data"]
        for _headers, body in await stream_messages(nats_url, "SCORE_NOTIFICATIONS")
        if body["type"] == kind
    ]


async def settled(client: httpx.AsyncClient, subscription_id: str, status: str) -> Any:
    async def look() -> Any:
        found = await deliveries_of(client, subscription_id)
        return found if found and all(d["status"] == status for d in found) else None

    return await wait_for(look, within=10)


async def test_each_matching_subscription_is_told_once_in_its_language(
    service: Service, nats_url: str, receiver: Receiver
) -> None:
    app, client = service
    es = await subscribe(client, regions=["tarija"], channel=webhook_to(receiver))
    receiver.secret = es["secret"]
    en = await subscribe(
        client,
        regions=["santa_cruz", "tarija"],
        channel=webhook_to(receiver, es["secret"]),
        language="en",
    )
    national = await subscribe(
        client, regions=[], national=True, channel=webhook_to(receiver, es["secret"])
    )
    elsewhere = await subscribe(
        client, regions=["la_paz"], channel=webhook_to(receiver, es["secret"])
    )
    deleted = await subscribe(client, channel=webhook_to(receiver, es["secret"]))
    await client.delete(f"/v1/subscriptions/{deleted['id']}", headers=ADMIN)

    tarija = milestone("tarija")
    country = milestone("national", threshold="10", value="12")
    [envelope, _] = await announce(nats_url, tarija, country)
    got = await receiver.wait(3)
    await asyncio.sleep(0.3)  # nothing more comes
    assert len(receiver.received) == 3 and not receiver.unverified

    by_subscription = {
        (r.json()["data"]["milestone"]["milestone_id"], r.json()["data"]["notification_id"]): r
        for r in got
    }
    assert len(by_subscription) == 3
    [to_es] = await deliveries_of(client, es["id"])
    [to_en] = await deliveries_of(client, en["id"])
    [to_country] = await deliveries_of(client, national["id"])
    assert await deliveries_of(client, elsewhere["id"]) == []
    assert (to_es["milestone"]["milestone_id"], to_en["milestone"]["milestone_id"]) == (
        tarija.milestone_id,
        tarija.milestone_id,
    )
    assert to_country["milestone"]["milestone_id"] == country.milestone_id
    texts = {r.webhook_id: r.json()["data"]["message"]["text"] for r in got}
    assert texts[to_es["id"]] == (
        "Tarija alcanzó su primera empresa capacitada en SCORE (1 empresa, 3 de marzo de 2026)."
    )
    assert texts[to_en["id"]] == (
        "Tarija reached its first trained enterprise in SCORE (1 enterprise, 3 March 2026)."
    )
    assert texts[to_country["id"]] == (
        "Bolivia alcanzó 10 empresas capacitadas en SCORE (12 empresas, 3 de marzo de 2026)."
    )
    first = next(r for r in got if r.webhook_id == to_es["id"]).json()
    assert first["type"] == "milestone.reached"
    assert first["data"]["dashboard_url"] == "http://127.0.0.1:8103/"
    assert first["data"]["milestone"]["scope"] == "tarija"

    # The same milestone again — a republished copy of its event, the milestone announced
    # anew by an indicators service on a new database — tells nobody again, and a
    # subscription made after it was announced is not told of it.
    later = await subscribe(client, channel=webhook_to(receiver, es["secret"]))
    await announce(nats_url, envelope, again=True)
    await announce(nats_url, tarija)
    await announce(nats_url, milestone("beni"))  # a marker: once handled, so were the copies
    await wait_for(lambda: _handled(app, 4), within=5)
    await asyncio.sleep(0.3)
    assert len(receiver.received) == 3
    assert await deliveries_of(client, later["id"]) == []
    delivered = await wait_for(lambda: _at_least(nats_url, DELIVERED, 3), within=10)
    assert sorted(d["subscription_id"] for d in delivered) == sorted(
        [es["id"], en["id"], national["id"]]
    )
    assert all(d["attempts"] == 1 and d["chamber"] == "Cámara de Tarija" for d in delivered)


async def _handled(app: FastAPI, count: int) -> bool:
    """Whether the consumer has handled `count` events (the stream's are handled in order)."""
    async with app.state.runtime.database.transaction(write=False) as conn:
        handled = await conn.execute(
            sa.select(sa.func.count()).select_from(inbox).where(inbox.c.consumer == DURABLE)
        )
        return int(handled.scalar_one()) >= count


async def _at_least(nats_url: str, kind: str, count: int) -> list[dict[str, Any]] | None:
    found = await published(nats_url, kind)
    return found if len(found) >= count else None


async def test_an_endpoint_failing_twice_then_answering_gets_it_once(
    service: Service, nats_url: str, receiver: Receiver
) -> None:
    _app, client = service
    made = await subscribe(client, channel=webhook_to(receiver))
    receiver.secret, receiver.statuses = made["secret"], [500, 503]
    await announce(nats_url, milestone("tarija"))
    [delivery] = await settled(client, made["id"], "delivered")
    assert delivery["attempts"] == 3
    assert [(a["outcome"], a["status_code"], a["error"]) for a in delivery["attempt_log"]] == [
        ("failed", 500, "HTTP 500"),
        ("failed", 503, "HTTP 503"),
        ("delivered", 200, None),
    ]
    assert {r.webhook_id for r in receiver.received} == {delivery["id"]}
    assert len(receiver.received) == 3
    [event] = await wait_for(lambda: _at_least(nats_url, DELIVERED, 1))
    await asyncio.sleep(0.2)
    assert len(await published(nats_url, DELIVERED)) == 1
    assert (event["notification_id"], event["attempts"], event["channel"]) == (
        delivery["id"],
        3,
        "webhook",
    )
    metrics = (await client.get("/metrics")).text
    assert 'score_notification_attempts_total{channel="webhook",outcome="failed"}' in metrics


async def test_an_endpoint_that_never_answers_well_ends_in_a_dead_letter(
    service: Service, nats_url: str, receiver: Receiver
) -> None:
    app, client = service
    made = await subscribe(client, channel=webhook_to(receiver))
    receiver.secret, receiver.otherwise = made["secret"], 502
    await announce(nats_url, milestone("tarija"))
    [delivery] = await settled(client, made["id"], "failed")
    assert (delivery["attempts"], delivery["last_error"]) == (3, "HTTP 502")  # 1 + 2 retries
    [event] = await wait_for(lambda: _at_least(nats_url, FAILED, 1))
    assert (event["notification_id"], event["attempts"], event["last_error"]) == (
        delivery["id"],
        3,
        "HTTP 502",
    )
    database = app.state.runtime.database
    async with database.transaction(write=False) as conn:
        [letter] = (await conn.execute(sa.select(dead_letters))).all()
    assert (letter.consumer, letter.event_id, letter.deliveries) == (
        "notifications-delivery",
        delivery["id"],
        3,
    )
    assert letter.subject == "score.bo.tarija.notifications.notification_failed.v1"
    metrics = (await client.get("/metrics")).text
    assert 'score_dead_letters_total{consumer="notifications-delivery"}' in metrics
    assert (await client.get("/readyz")).json()["checks"]["dead_letters"] == 1

    # Retried by an operator once the endpoint is mended: a fresh budget, the same id.
    receiver.otherwise = 200
    retried = await client.post(f"/v1/ops/dead-letters/{letter.id}/retry", headers=ADMIN)
    assert retried.status_code == 200, retried.text
    assert retried.json()["outcome"] == "retried"
    assert (await client.get("/readyz")).json()["checks"]["dead_letters"] == 0
    [again] = await settled(client, made["id"], "delivered")
    assert again["attempts"] == 4 and again["id"] == delivery["id"]
    assert receiver.received[-1].webhook_id == delivery["id"]
    await wait_for(lambda: _at_least(nats_url, DELIVERED, 1))


async def test_410_gone_disables_the_subscription(
    service: Service, nats_url: str, receiver: Receiver
) -> None:
    _app, client = service
    made = await subscribe(client, channel=webhook_to(receiver))
    receiver.secret, receiver.otherwise = made["secret"], 410
    await announce(nats_url, milestone("tarija"))
    [delivery] = await settled(client, made["id"], "failed")
    assert delivery["attempts"] == 1
    shown = (await client.get(f"/v1/subscriptions/{made['id']}", headers=ADMIN)).json()
    assert shown["status"] == "disabled" and "410" in shown["status_reason"]
    [event] = await wait_for(lambda: _at_least(nats_url, FAILED, 1))
    assert event["last_error"] == "HTTP 410: the subscription is disabled"
    await announce(nats_url, milestone("tarija", threshold="2"))
    await asyncio.sleep(0.5)
    assert len(await deliveries_of(client, made["id"])) == 1
    assert len(receiver.received) == 1


async def test_a_slow_endpoint_delays_only_its_own(
    tmp_path: Path, nats_url: str, receiver: Receiver
) -> None:
    slow = Receiver(hang=True)
    await slow.start()
    app = build_app(
        settings(
            tmp_path, nats_url, notifications_timeout_seconds=5.0, notifications_per_endpoint=2
        )
    )
    try:
        async with serving(app) as client:
            stuck = await subscribe(client, channel={"kind": "webhook", "url": slow.url})
            fine = await subscribe(client, channel=webhook_to(receiver))
            slow.secret, receiver.secret = stuck["secret"], fine["secret"]
            await announce(nats_url, *[milestone("tarija", threshold=str(n)) for n in range(1, 6)])
            await receiver.wait(5, within=3)
            assert len(slow.received) == 2  # as many at once as one endpoint may have
            assert {d["status"] for d in await deliveries_of(client, stuck["id"])} == {"pending"}
    finally:
        await slow.stop()


async def test_an_address_that_became_inward_is_refused_when_sending(
    service: Service, nats_url: str, receiver: Receiver
) -> None:
    app, client = service
    made = await subscribe(client, channel=webhook_to(receiver))
    receiver.secret = made["secret"]
    app.state.settings.webhook_allowed_hosts = ""  # 127.0.0.1 is no longer allowed
    await announce(nats_url, milestone("tarija"))
    [delivery] = await settled(client, made["id"], "failed")
    assert receiver.received == [] and receiver.unverified == []
    assert delivery["last_error"].startswith("refused: the URL resolves to a loopback address")


async def test_e_mail_in_the_subscription_s_language(
    tmp_path: Path, nats_url: str, smtp: SmtpServer
) -> None:
    app = build_app(settings(tmp_path, nats_url, smtp_port=smtp.port))
    async with serving(app) as client:
        es = await subscribe(client, channel={"kind": "email", "address": "avisos@tarija.bo"})
        en = await subscribe(
            client,
            regions=[],
            national=True,
            channel={"kind": "email", "address": "news@cepb.bo"},
            language="en",
        )
        await announce(
            nats_url,
            milestone("tarija"),
            milestone("national", "women_share_trainers", "40", "42.35"),
        )
        mails = await smtp.wait(2)
        await settled(client, es["id"], "delivered")
        await settled(client, en["id"], "delivered")
    by_to = {to[0]: mail for to, mail in mails}
    spanish, english = by_to["avisos@tarija.bo"], by_to["news@cepb.bo"]
    assert spanish["Subject"] == "SCORE: Tarija alcanzó un hito"
    assert english["Subject"] == "SCORE: Bolivia reached a milestone"
    text = spanish.get_body(("plain",))
    html = spanish.get_body(("html",))
    assert text is not None and html is not None
    assert "Tarija alcanzó su primera empresa capacitada en SCORE" in text.get_content()
    assert "http://127.0.0.1:8103/" in text.get_content()
    assert 'href="http://127.0.0.1:8103/"' in html.get_content()
    english_text = english.get_body(("plain",))
    assert english_text is not None
    assert (
        "Bolivia reached 40% women among the trainers in SCORE (42.4%, 3 March 2026)."
        in english_text.get_content()
    )


async def test_a_secret_sealed_under_another_key_fails_the_attempt_and_says_why(
    service: Service, nats_url: str, receiver: Receiver
) -> None:
    app, client = service
    made = await subscribe(client, channel=webhook_to(receiver))
    receiver.secret = made["secret"]
    app.state.sender.sealer = Sealer("a-key-that-is-not-the-one-it-was-sealed-with")
    await announce(nats_url, milestone("tarija"))
    [delivery] = await settled(client, made["id"], "failed")
    assert delivery["last_error"] == "SecretsUnreadable"
    assert receiver.received == [] and receiver.unverified == []


async def test_a_notification_s_event_is_caused_by_the_milestone_s_and_in_its_chain(
    service: Service, nats_url: str, receiver: Receiver
) -> None:
    _, client = service
    told = await subscribe(client, channel=webhook_to(receiver))
    receiver.secret = told["secret"]
    chain = "0199e0d3-0000-7000-8000-00000000c0de"
    [envelope] = await announce(
        nats_url, example_envelope(milestone("tarija")).model_copy(update={"correlationid": chain})
    )
    await receiver.wait(1)
    [delivered] = await wait_for(lambda: _bodies_at_least(nats_url, DELIVERED, 1), within=10)
    assert delivered["causationid"] == envelope.id
    assert delivered["correlationid"] == chain


async def _bodies_at_least(nats_url: str, kind: str, count: int) -> list[dict[str, Any]] | None:
    found = [
        body
        for _headers, body in await stream_messages(nats_url, "SCORE_NOTIFICATIONS")
        if body["type"] == kind
    ]
    return found if len(found) >= count else None
