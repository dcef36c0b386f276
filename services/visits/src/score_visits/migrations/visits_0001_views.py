"""the visits service's views of enterprises and trainers, and its visits

Revision ID: visits_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "visits_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("visits",)
depends_on: str | Sequence[str] | None = "chassis_0002"


def upgrade() -> None:
    op.create_table(
        "vis_enterprises",
        sa.Column("enterprise_id", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("withdrawn_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("enterprise_id"),
    )
    op.create_table(
        "vis_enrolments",
        sa.Column("enrolment_id", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=False),
        sa.Column("module", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("enrolment_id"),
    )
    op.create_index(
        op.f("ix_vis_enrolments_enterprise_id"), "vis_enrolments", ["enterprise_id"], unique=False
    )
    op.create_table(
        "vis_trainers",
        sa.Column("trainer_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("trainer_id"),
    )
    op.create_table(
        "vis_certifications",
        sa.Column("trainer_id", sa.String(length=64), nullable=False),
        sa.Column("module", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("trainer_id", "module"),
    )
    op.create_table(
        "vis_visits",
        sa.Column("visit_id", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=False),
        sa.Column("trainer_id", sa.String(length=64), nullable=False),
        sa.Column("module", sa.Integer(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("scheduled_for", sa.Date(), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("cancelled_on", sa.Date(), nullable=True),
        sa.Column("improvements", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("visit_id"),
    )
    op.create_index(
        op.f("ix_vis_visits_enterprise_id"), "vis_visits", ["enterprise_id"], unique=False
    )
