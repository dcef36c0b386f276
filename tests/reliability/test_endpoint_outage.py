"""Scenario 6, an endpoint outage: a chamber's webhook is down — first nothing listening, then
answering 503 — while milestones are reached, and comes back on the same address. Every
notification is delivered, once (by `webhook-id`), none given up on.

The system runs as `score up` runs it; the notifications' retry schedule is a setting
(`SCORE_NOTIFICATIONS_RETRY_SCHEDULE`), shortened so that the short variant's outage of
tens of seconds spans several attempts, as the soak's of minutes does with longer pauses.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from score_cli.sinks import Inbox, WebhookSink
from score_cli.up import Service
from score_testing.chambers import Subscribed, settled_account, subscribe
from score_testing.load import REGIONS, EnrolmentLoad
from score_testing.reconcile import Figures, record
from score_testing.streams import wait_for
from score_testing.supervised import SupervisedSystem

pytestmark = [pytest.mark.e2e, pytest.mark.nats]

SERVICES = (Service("enrolment", 1), Service("indicators", 3), Service("notifications", 4))


class Chamber(WebhookSink):
    """A chamber's receiver that can answer 503 for a while, as one whose application is
    down behind a proxy that still answers."""

    unavailable = False
    refused_503 = 0

    def receive(self, path: str, headers: dict[str, str], body: bytes) -> int:
        if self.unavailable:
            self.refused_503 += 1
            return 503
        return super().receive(path, headers, body)


async def _deliveries(url: str, headers: dict[str, str], subscriptions: list[Subscribed]) -> Any:
    async with httpx.AsyncClient(headers=headers, timeout=30, trust_env=False) as client:
        found: list[dict[str, Any]] = []
        for subscription in subscriptions:
            answer = await client.get(
                f"{url}/v1/deliveries", params={"subscription_id": subscription.id, "limit": 1000}
            )
            assert answer.status_code == 200, answer.text
            found += answer.json()["items"]
        return found


async def _endpoint_outage(
    data_dir: Path, *, enterprises: int, outage: float, schedule: str, variant: str
) -> None:
    began = time.monotonic()
    inbox = Inbox()
    chamber = Chamber(inbox)
    chamber.start()
    port = chamber.port
    environment = {
        "notifications": {
            "SCORE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
            "SCORE_NOTIFICATIONS_RETRY_SCHEDULE": schedule,
            "SCORE_NOTIFICATIONS_TIMEOUT_SECONDS": "5",
        }
    }
    with SupervisedSystem(data_dir, SERVICES, environment=environment) as up:
        headers = up.admin_headers()
        notifications, indicators = up.url("notifications"), up.url("indicators")
        subscriptions = [
            await subscribe(
                notifications, headers, chamber, "cepb", national=True, regions=("la_paz",)
            ),
            await subscribe(notifications, headers, chamber, "oriente", regions=("santa_cruz",)),
        ]
        chamber.stop()  # nothing listens on its address now
        down_since = time.monotonic()
        result = await EnrolmentLoad(up.url("enrolment"), headers, enterprises=enterprises).run()

        async def all_tried_and_failed() -> bool:
            found = await _deliveries(notifications, headers, subscriptions)
            return bool(found) and all(d["attempts"] >= 1 for d in found)

        await wait_for(all_tried_and_failed, within=120)
        await asyncio.sleep(max(0.0, outage / 2 - (time.monotonic() - down_since)))
        answering = Chamber(inbox, port=port)  # the proxy is back, the application not yet
        answering.secrets = chamber.secrets
        answering.unavailable = True
        answering.start()
        assert answering.port == port
        await asyncio.sleep(max(0.0, outage - (time.monotonic() - down_since)))
        answering.unavailable = False  # the chamber is back
        back_after = time.monotonic() - down_since

        trained = len(result.of("train"))
        account = await settled_account(
            indicators,
            notifications,
            headers,
            subscriptions,
            answering,
            expected_milestones=len(REGIONS) + trained // 10,
            within=max(120.0, outage),
        )
        deliveries = await _deliveries(notifications, headers, subscriptions)
    answering.stop()

    outcomes = [[a["outcome"] for a in d["attempt_log"]] for d in deliveries]
    failed_attempts = sum(o.count("failed") for o in outcomes)
    record(
        Figures(
            scenario="endpoint outage",
            variant=variant,
            commands=len(result.acknowledged),
            events=len(account.milestones),
            duplicates=inbox.repeats,
            lost=account.missing,
            double_counted=account.twice,
            seconds=round(time.monotonic() - began, 1),
            details={
                "outage_seconds": round(back_after, 1),
                "retry_schedule": schedule,
                "notifications_owed": len(account.owed),
                "notifications_received": len(account.received),
                "failed_attempts": failed_attempts,
                "answered_503": answering.refused_503,
                "given_up": account.failed,
            },
        )
    )
    assert len(account.milestones) == len(REGIONS) + trained // 10
    assert (account.missing, account.twice, account.failed) == (0, 0, 0)
    assert len(account.received) == len(account.owed) == len(deliveries)
    assert inbox.repeats == 0 and answering.refused == []
    # Each was tried while the chamber was away, and delivered once it was back.
    assert all(o[0] == "failed" and o[-1] == "delivered" for o in outcomes), outcomes
    assert answering.refused_503 > 0
    assert all(d["status"] == "delivered" for d in deliveries)


@pytest.mark.timeout(300)
async def test_a_webhook_down_then_back_gets_every_notification_once(tmp_path: Path) -> None:
    await _endpoint_outage(
        tmp_path / "score",
        enterprises=100,
        outage=20.0,
        schedule="1,2,3,3,3,5,5,10,10,30",
        variant="short",
    )


@pytest.mark.soak
@pytest.mark.timeout(3600)
async def test_a_webhook_down_for_five_minutes_gets_every_notification_once(
    tmp_path: Path,
) -> None:
    await _endpoint_outage(
        tmp_path / "score",
        enterprises=1000,
        outage=300.0,
        schedule="5,15,30,60,60,60,60,60,60,120",
        variant="5-minute outage",
    )
