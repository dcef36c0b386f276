"""Who is told of a milestone: the consumer of `SCORE_INDICATORS`.

In the consumer's own transaction (whose inbox row drops a duplicate or redelivered event),
the milestone is marked seen and one pending delivery is written for each subscription
active at that moment whose regions hold the milestone's scope, or that asked for national
milestones when the scope is `national`. Nothing is sent here: the sender (`delivery.py`)
picks the rows up, so a slow or dead endpoint never holds the stream back. A milestone seen
before, under any event id, is routed to nobody: a subscription made after a milestone was
announced never gets it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import upsert
from score_chassis.consumer import Handler, Subscription
from score_chassis.logs import get_logger
from score_chassis.store import NO_CAUSATION, Causation
from score_contracts.envelope import Envelope
from score_contracts.events import Event, MilestoneReached
from score_contracts.reference import NATIONAL
from score_contracts.subjects import STREAMS
from score_notifications.ssrf import parsed
from score_notifications.tables import deliveries, milestones_seen, subscriptions

log = get_logger(__name__)

DURABLE = "notifications-milestones"
SMTP_ENDPOINT = "smtp"

_IDS = uuid.UUID("0b9a3f64-3c1e-4e57-8a02-6f2d5c1b7e90")
"""The namespace of delivery ids (UUIDv5 of milestone and subscription)."""


def delivery_id(milestone_id: str, subscription_id: str) -> str:
    """The same pair has the same id everywhere and always: the webhook's `webhook-id`."""
    return str(uuid.uuid5(_IDS, f"{milestone_id}/{subscription_id}"))


def endpoint_of(channel: str, url: str | None) -> str:
    if channel != "webhook" or url is None:
        return SMTP_ENDPOINT
    parts = parsed(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{(parts.hostname or '').lower()}:{port}"


def matches(regions: list[str], national: bool, scope: str) -> bool:
    """Whether a subscription to `regions` (and the country's, if `national`) is told of a
    milestone of `scope`."""
    return national if scope == NATIONAL else scope in regions


async def route(
    conn: AsyncConnection, milestone: MilestoneReached, cause: Causation = NO_CAUSATION
) -> int:
    """Write a pending delivery for every matching subscription; how many were new. Each
    remembers `cause`, which its notification's event names (ADR 023)."""
    now = dt.datetime.now(dt.UTC)
    first = await conn.execute(
        upsert.insert(conn, milestones_seen)
        .values(milestone_id=milestone.milestone_id, seen_at=now)
        .on_conflict_do_nothing()
        .returning(milestones_seen.c.milestone_id)
    )
    if first.first() is None:
        log.info("notification.milestone_seen_before", milestone_id=milestone.milestone_id)
        return 0
    rows = await conn.execute(
        sa.select(
            subscriptions.c.subscription_id,
            subscriptions.c.regions,
            subscriptions.c.national,
            subscriptions.c.channel,
            subscriptions.c.url,
        ).where(subscriptions.c.status == "active")
    )
    owed = [
        {
            "delivery_id": delivery_id(milestone.milestone_id, row.subscription_id),
            "milestone_id": milestone.milestone_id,
            "subscription_id": row.subscription_id,
            "channel": row.channel,
            "endpoint": endpoint_of(row.channel, row.url),
            "scope": milestone.scope,
            "milestone": milestone.model_dump(mode="json"),
            "status": "pending",
            "attempts": 0,
            "budget_from": 0,
            "next_attempt_at": now,
            "created_at": now,
            "cause_event_id": cause.causation_id,
            "correlation_id": cause.correlation_id,
        }
        for row in rows
        if matches(list(row.regions), row.national, milestone.scope)
    ]
    if not owed:
        return 0
    # One notification per (milestone, subscription), ever, whatever writes the rows.
    inserted = await conn.execute(
        upsert.insert(conn, deliveries)
        .values(owed)
        .on_conflict_do_nothing(index_elements=["milestone_id", "subscription_id"])
        .returning(deliveries.c.delivery_id)
    )
    new = len(inserted.all())
    log.info(
        "notification.routed", milestone_id=milestone.milestone_id, scope=milestone.scope, owed=new
    )
    return new


def handler(on_routed: Callable[[], None]) -> Handler:
    async def handle(conn: AsyncConnection, envelope: Envelope[Event]) -> None:
        event = envelope.data
        if isinstance(event, MilestoneReached) and await route(
            conn, event, Causation.of_event(envelope)
        ):
            on_routed()

    return handle


def subscription(on_routed: Callable[[], None] = lambda: None) -> Subscription:
    return Subscription(
        durable=DURABLE,
        stream=STREAMS["indicators"],
        handler=handler(on_routed),
        filter_subjects=("score.*.*.indicators.milestone_reached.>",),
    )
