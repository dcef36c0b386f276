"""A notification as a webhook, per the Standard Webhooks specification.

The body is JSON: `type`, `timestamp` and `data` (the notification's id, the milestone, the
message in the subscription's language, the dashboard's link). It is signed with the
`standardwebhooks` library: `webhook-id` (the delivery's id, the same at every attempt, so a
receiver drops a repeat), `webhook-timestamp` (seconds), `webhook-signature` (`v1,` and the
HMAC-SHA256 of `id.timestamp.body` under the subscription's `whsec_` secret).

The call goes to the address the SSRF check approved (`ssrf.Target`), with the URL's host as
`Host` and as the TLS server name; redirects are not followed (a redirect could point
anywhere).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from score_notifications.ssrf import Target

EVENT_TYPE = "milestone.reached"
USER_AGENT = "SCORE-Notifications/1 (Standard Webhooks)"


@dataclass(frozen=True, slots=True)
class Answer:
    """What came of one call: the status, or no status and an error in our own words."""

    status: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def gone(self) -> bool:
        return self.status == 410


def body(data: dict[str, Any], now: dt.datetime) -> str:
    return json.dumps(
        {"type": EVENT_TYPE, "timestamp": now.isoformat(), "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )


def signed_headers(secret: str, message_id: str, now: dt.datetime, payload: str) -> dict[str, str]:
    signature = Webhook(secret).sign(message_id, now, payload)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


async def call(
    client: httpx.AsyncClient,
    target: Target,
    *,
    secret: str,
    message_id: str,
    data: dict[str, Any],
    seconds: float,
) -> Answer:
    """POST the notification to `target`; never raises for what the network or the receiver
    does."""
    now = dt.datetime.now(dt.UTC)
    payload = body(data, now)
    headers = signed_headers(secret, message_id, now, payload)
    headers["host"] = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
    extensions = {"sni_hostname": target.host} if target.url.startswith("https:") else {}
    try:
        response = await client.post(
            target.connect_url(),
            content=payload.encode(),
            headers=headers,
            timeout=seconds,
            follow_redirects=False,
            extensions=extensions,
        )
    except httpx.HTTPError as error:
        return Answer(status=None, error=type(error).__name__)
    if 200 <= response.status_code < 300:
        return Answer(status=response.status_code, error=None)
    return Answer(status=response.status_code, error=f"HTTP {response.status_code}")
