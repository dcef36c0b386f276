"""The demo's sinks keep what a chamber would accept: a webhook that verifies, a mail."""

from __future__ import annotations

import base64
import datetime as dt
import json
import smtplib
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

from score_cli.sinks import Inbox, Sinks, running_sinks

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[Sinks]:
    with running_sinks(Inbox(tmp_path / "received.jsonl")) as running:
        running.webhooks.secrets["tarija"] = SECRET
        yield running


def post(sinks: Sinks, *, signed_with: str, webhook_id: str = "msg-1") -> httpx.Response:
    body = json.dumps(
        {
            "type": "milestone.reached",
            "data": {
                "message": {
                    "language": "es",
                    "subject": "SCORE: Tarija alcanzó un hito",
                    "text": "Tarija alcanzó su primera empresa capacitada en SCORE.",
                }
            },
        }
    )
    now = dt.datetime.now(dt.UTC)
    headers = {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(signed_with).sign(webhook_id, now, body),
        "content-type": "application/json",
    }
    return httpx.post(sinks.webhooks.url("tarija"), content=body, headers=headers, trust_env=False)


def test_a_webhook_that_verifies_is_kept_once(sinks: Sinks, tmp_path: Path) -> None:
    assert post(sinks, signed_with=SECRET).status_code == 204
    assert post(sinks, signed_with=SECRET).status_code == 204  # a resend: the same id
    (received,) = sinks.inbox.all()
    assert (received.kind, received.notification_id, received.to) == ("webhook", "msg-1", "tarija")
    assert received.text == "Tarija alcanzó su primera empresa capacitada en SCORE."
    assert sinks.inbox.repeats == 1
    # Kept in the file too: a demo run again on the same folder still shows it.
    assert [r.notification_id for r in Inbox(tmp_path / "received.jsonl").all()] == ["msg-1"]


def test_a_bad_signature_is_refused_and_not_kept(sinks: Sinks) -> None:
    assert post(sinks, signed_with=OTHER).status_code == 400
    assert sinks.inbox.all() == []
    assert len(sinks.webhooks.refused) == 1


def test_a_request_for_no_subscription_is_refused(sinks: Sinks) -> None:
    response = httpx.post(sinks.webhooks.url("oruro"), content=b"{}", trust_env=False)
    assert response.status_code == 404
    assert sinks.inbox.all() == []


def test_the_smtp_sink_keeps_each_mail(sinks: Sinks) -> None:
    mail = EmailMessage()
    mail["From"] = "score@localhost"
    mail["To"] = "camara@demo.score.example"
    mail["Subject"] = "SCORE: Tarija reached a milestone"
    mail["X-SCORE-Notification"] = "delivery-1"
    mail.set_content("Tarija reached its first trained enterprise in SCORE.")
    mail.add_alternative("<p>Tarija reached its first trained enterprise in SCORE.</p>", "html")
    with smtplib.SMTP("127.0.0.1", sinks.smtp.port, timeout=5) as smtp:
        smtp.send_message(mail)
    deadline = time.monotonic() + 5
    while not sinks.inbox.all() and time.monotonic() < deadline:
        time.sleep(0.05)
    (received,) = sinks.inbox.all()
    assert received.kind == "email"
    assert received.to == "camara@demo.score.example"
    assert received.subject == "SCORE: Tarija reached a milestone"
    assert received.text == "Tarija reached its first trained enterprise in SCORE."
    assert received.notification_id == "delivery-1"


def test_the_notifications_are_pointed_at_the_sinks(sinks: Sinks) -> None:
    environment = sinks.environment({"SCORE_WEBHOOK_ALLOWED_HOSTS": "hooks.internal"})
    assert environment["SCORE_WEBHOOK_ALLOWED_HOSTS"] == "hooks.internal,127.0.0.1"
    assert environment["SCORE_SMTP_PORT"] == str(sinks.smtp.port)
    assert environment["SCORE_SMTP_USERNAME"] is None  # left out: the sink asks for none
