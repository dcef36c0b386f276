"""The chambers' side of a reliability scenario: webhook subscriptions pointing at a real
receiver (the demo's `WebhookSink`, which verifies each call with `standardwebhooks`), and
the account of what each milestone owed them against what they received, by `webhook-id`.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from score_cli.sinks import WebhookSink


@dataclass(frozen=True)
class Subscribed:
    id: str
    key: str
    """The sink's key its webhook points at."""
    national: bool
    regions: tuple[str, ...]

    def owes(self, milestone: dict[str, Any]) -> bool:
        scope = milestone["scope"]
        return self.national if scope == "national" else scope in self.regions


async def subscribe(
    notifications_url: str,
    headers: dict[str, str],
    sink: WebhookSink,
    key: str,
    *,
    regions: tuple[str, ...] = (),
    national: bool = False,
) -> Subscribed:
    """A chamber's webhook subscription to `sink`, the sink told its secret."""
    body = {
        "chamber": f"Cámara {key}",
        "regions": list(regions),
        "national": national,
        "channel": {"kind": "webhook", "url": sink.url(key)},
        "language": "es",
    }
    async with httpx.AsyncClient(headers=headers, timeout=30, trust_env=False) as client:
        made = await client.post(f"{notifications_url}/v1/subscriptions", json=body)
    assert made.status_code == 201, made.text
    sink.secrets[key] = made.json()["secret"]
    return Subscribed(made.json()["id"], key, national, regions)


@dataclass
class NotificationAccount:
    """What the milestones owed the subscriptions, and what became of it."""

    milestones: list[dict[str, Any]]
    listed_twice: int
    """(milestone, scope, threshold) listed more than once: a milestone announced again."""
    owed: set[tuple[str, str]]
    """(milestone id, subscription id) pairs a notification is owed for."""
    deliveries: Counter[tuple[str, str]]
    """The notifications service's records per pair (1 each, if none was made twice)."""
    delivery_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    received: set[str] = field(default_factory=set)
    """The `webhook-id`s the chambers received (verified)."""
    failed: int = 0

    @property
    def missing(self) -> int:
        """Owed and never received."""
        return sum(1 for pair in self.owed if self.delivery_ids.get(pair) not in self.received)

    @property
    def twice(self) -> int:
        """Notified more than once from a chamber's point of view: two records of one pair, or
        a webhook for a pair not owed."""
        owed_ids = {self.delivery_ids[p] for p in self.owed if p in self.delivery_ids}
        return (
            sum(n - 1 for n in self.deliveries.values() if n > 1)
            + len(self.received - owed_ids)
            + self.listed_twice
        )

    @property
    def settled(self) -> bool:
        return self.missing == 0


async def account(
    indicators_url: str,
    notifications_url: str,
    headers: dict[str, str],
    subscriptions: list[Subscribed],
    sink: WebhookSink,
) -> NotificationAccount:
    """The account as it stands: milestones listed by the indicators, the notifications'
    delivery records, and the sink's inbox."""
    async with httpx.AsyncClient(headers=headers, timeout=30, trust_env=False) as client:
        listed = await client.get(f"{indicators_url}/v1/milestones", params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        milestones: list[dict[str, Any]] = listed.json()["milestones"]
        records: list[dict[str, Any]] = []
        for subscription in subscriptions:
            answer = await client.get(
                f"{notifications_url}/v1/deliveries",
                params={"subscription_id": subscription.id, "limit": 1000},
            )
            assert answer.status_code == 200, answer.text
            records += answer.json()["items"]
    kinds = Counter((m["milestone"], m["scope"], m["threshold"]) for m in milestones)
    owed = {(m["milestone_id"], s.id) for m in milestones for s in subscriptions if s.owes(m)}
    pairs = [(r["milestone"]["milestone_id"], r["subscription_id"]) for r in records]
    return NotificationAccount(
        milestones=milestones,
        listed_twice=sum(n - 1 for n in kinds.values()),
        owed=owed,
        deliveries=Counter(pairs),
        delivery_ids={pair: r["id"] for pair, r in zip(pairs, records, strict=True)},
        received={r.notification_id for r in sink.inbox.all()},
        failed=sum(1 for r in records if r["status"] == "failed"),
    )


async def settled_account(
    indicators_url: str,
    notifications_url: str,
    headers: dict[str, str],
    subscriptions: list[Subscribed],
    sink: WebhookSink,
    *,
    expected_milestones: int,
    within: float,
) -> NotificationAccount:
    """Poll (bounded) until the expected number of milestones is listed and every
    notification they owe was received; the account either way."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        now = await account(indicators_url, notifications_url, headers, subscriptions, sink)
        if (len(now.milestones) >= expected_milestones and now.settled) or (
            asyncio.get_running_loop().time() > deadline
        ):
            return now
        await asyncio.sleep(0.5)
