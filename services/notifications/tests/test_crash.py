"""The service as it is deployed, killed between sending a webhook and recording it: started
again, it sends the notification again with the same `webhook-id`, so the chamber can tell
the repeat. Its log holds neither the secret nor the e-mail address."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from score_testing.process import service_process

from .conftest import (
    ADMIN,
    TEST_KEY,
    Receiver,
    announce,
    deliveries_of,
    milestone,
    subscribe,
    webhook_to,
)

pytestmark = [pytest.mark.nats, pytest.mark.e2e]

ADDRESS = "secretaria@camara-tarija.bo"


async def test_a_kill_between_send_and_record_sends_again_with_the_same_id(
    tmp_path: Path, nats_url: str, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "SCORE_NOTIFICATIONS_SECRET_KEY": TEST_KEY,
        "SCORE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        "SCORE_NOTIFICATIONS_TIMEOUT_SECONDS": "2",
        "SCORE_NOTIFICATIONS_LEASE_SECONDS": "2",
        "SCORE_NOTIFICATIONS_RETRY_SCHEDULE": "0.1,0.2",
        "SCORE_SMTP_PORT": "9",  # nobody there: the mail fails, and says so in the log
    }.items():
        monkeypatch.setenv(name, value)
    receiver.hang = True
    async with service_process("score_notifications", tmp_path, nats_url) as running:
        async with httpx.AsyncClient(base_url=running.url, trust_env=False) as client:
            made = await subscribe(client, channel=webhook_to(receiver))
            await subscribe(client, channel={"kind": "email", "address": ADDRESS})
        receiver.secret = made["secret"]
        await announce(nats_url, milestone("tarija"))
        [first] = await receiver.wait(1)
        os.kill(running.pid, signal.SIGKILL)  # the call is under way, its answer never recorded
        first_log = running.log()
    receiver.hang = False
    async with service_process("score_notifications", tmp_path, nats_url) as running:
        [_, second] = await receiver.wait(2, within=20)
        async with httpx.AsyncClient(base_url=running.url, trust_env=False) as client:
            [delivery] = await deliveries_of(client, made["id"])
            listed = await client.get("/v1/subscriptions", headers=ADMIN)
        second_log = running.log()
    assert second.webhook_id == first.webhook_id == delivery["id"]
    assert delivery["status"] == "delivered"
    assert ADDRESS in listed.text  # shown to those who manage it, never logged
    assert '"notification.routed"' in first_log
    for log in (first_log, second_log):
        assert made["secret"] not in log
        assert made["secret"].removeprefix("whsec_") not in log
        assert ADDRESS not in log
    assert '"notification.delivered"' in second_log
