"""the subscriptions, deliveries and their attempts

Revision ID: notifications_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notifications_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("notifications",)
depends_on: str | Sequence[str] | None = "chassis_0006"

Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ntf_subscriptions",
        sa.Column("subscription_id", sa.String(36), primary_key=True),
        sa.Column("chamber", sa.String(500), nullable=False),
        sa.Column("regions", sa.JSON, nullable=False),
        sa.Column("national", sa.Boolean, nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("url", sa.Text, nullable=True),
        sa.Column("sealed_secret", sa.Text, nullable=True),
        sa.Column("address", sa.String(320), nullable=True),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("owner_regions", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ntf_subscriptions_status", "ntf_subscriptions", ["status"])
    op.create_table(
        "ntf_milestones_seen",
        sa.Column("milestone_id", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "ntf_deliveries",
        sa.Column("delivery_id", sa.String(36), primary_key=True),
        sa.Column("milestone_id", sa.String(64), nullable=False),
        sa.Column("subscription_id", sa.String(36), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("endpoint", sa.String(300), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("milestone", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("budget_from", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("milestone_id", "subscription_id", name="uq_ntf_deliveries_pair"),
    )
    op.create_index("ix_ntf_deliveries_due", "ntf_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_ntf_deliveries_subscription", "ntf_deliveries", ["subscription_id"])
    op.create_table(
        "ntf_attempts",
        sa.Column("id", Position, primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
    )
    op.create_index("ix_ntf_attempts_delivery_id", "ntf_attempts", ["delivery_id"])
