"""each delivery remembers the milestone_reached event that caused it, and its chain

Revision ID: notifications_0002
Revises: notifications_0001

The notification's event (`notification_delivered`, `notification_failed`) names the
milestone's event as its `causationid` and carries its `correlationid` (ADR 023). Rows
written before have neither: their events are their own cause, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "notifications_0002"
down_revision: str | None = "notifications_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ntf_deliveries") as table:
        table.add_column(sa.Column("cause_event_id", sa.String(36), nullable=True))
        table.add_column(sa.Column("correlation_id", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ntf_deliveries") as table:
        table.drop_column("correlation_id")
        table.drop_column("cause_event_id")
