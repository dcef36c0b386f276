"""The service's tables: the chambers' subscriptions, one row per notification owed, and each
attempt to deliver it.

Subscriptions are configuration, not facts of the programme: plain rows, not events (ADR 019).
A delivery row is written by the consumer of `milestone_reached`, in the consumer's
transaction, and `(milestone_id, subscription_id)` is unique: a duplicate or redelivered event
makes none. Its id is derived from that pair, and is the webhook's `webhook-id`.
"""

from __future__ import annotations

import sqlalchemy as sa

from score_chassis.tables import Position

metadata = sa.MetaData()

subscriptions = sa.Table(
    "ntf_subscriptions",
    metadata,
    sa.Column("subscription_id", sa.String(36), primary_key=True),
    sa.Column("chamber", sa.String(500), nullable=False),
    sa.Column("regions", sa.JSON, nullable=False),
    sa.Column("national", sa.Boolean, nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # webhook, email
    sa.Column("url", sa.Text, nullable=True),
    sa.Column("sealed_secret", sa.Text, nullable=True),
    sa.Column("address", sa.String(320), nullable=True),
    sa.Column("language", sa.String(2), nullable=False),
    sa.Column("owner_regions", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # active, disabled, deleted
    sa.Column("status_reason", sa.String(500), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_ntf_subscriptions_status", "status"),
)
"""`owner_regions`: the regions of the chamber token that made it (the subscription's own
regions when an admin made it); a chamber token bound to all of them manages it.
`sealed_secret`: the webhook's secret, encrypted (`sealing.py`)."""

milestones_seen = sa.Table(
    "ntf_milestones_seen",
    metadata,
    sa.Column("milestone_id", sa.String(64), primary_key=True),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
)
"""Every milestone routed, once: the same milestone announced again under another event id
(the indicators' database made anew reads the history again, ADR 017) is routed to nobody,
not even to the subscriptions made since."""

deliveries = sa.Table(
    "ntf_deliveries",
    metadata,
    sa.Column("delivery_id", sa.String(36), primary_key=True),
    sa.Column("milestone_id", sa.String(64), nullable=False),
    sa.Column("subscription_id", sa.String(36), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("endpoint", sa.String(300), nullable=False),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("milestone", sa.JSON, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # pending, delivered, failed, cancelled
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("budget_from", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_error", sa.String(500), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("cause_event_id", sa.String(36), nullable=True),
    sa.Column("correlation_id", sa.String(64), nullable=True),
    sa.UniqueConstraint("milestone_id", "subscription_id", name="uq_ntf_deliveries_pair"),
    sa.Index("ix_ntf_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_ntf_deliveries_subscription", "subscription_id"),
)
"""`endpoint`: the host and port a webhook calls, or `smtp`: what concurrency is bounded by.
`budget_from`: the attempts made before the current budget (a dead letter retried starts a
fresh one). `leased_until`: a sender holds the row while it sends; one that died holding it
is taken to be gone once the lease has passed, and the notification is sent again, with the
same `webhook-id`."""

attempts = sa.Table(
    "ntf_attempts",
    metadata,
    sa.Column("id", Position, primary_key=True, autoincrement=True),
    sa.Column("delivery_id", sa.String(36), nullable=False, index=True),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),  # delivered, failed, gone
    sa.Column("status_code", sa.Integer, nullable=True),
    sa.Column("error", sa.String(500), nullable=True),
)
"""Every attempt, whatever came of it. An error is the service's own words (`HTTP 503`,
`ConnectTimeout`, `SMTP 550`): never the receiver's text, which may quote an address."""
