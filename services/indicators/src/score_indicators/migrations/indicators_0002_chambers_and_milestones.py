"""enterprises' chambers in the projection; the milestones reached

Revision ID: indicators_0002
Revises: indicators_0001

The projection's enterprises had no chamber, which the `new_chambers` target counts by: the
projection is emptied, with its consumers' inbox rows, so that they read their streams again
from the start (and the view answers 503 meanwhile, as in any rebuild: `view.py`). The
milestones reached are a table of their own, never cleared by a rebuild.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "indicators_0002"
down_revision: str | None = "indicators_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "chassis_0006"

PROJECTION = (
    "ind_visits",
    "ind_certifications",
    "ind_trainers",
    "ind_case_studies",
    "ind_completions",
    "ind_payments",
    "ind_trainings",
    "ind_enrolments",
    "ind_enterprises",
)


def upgrade() -> None:
    with op.batch_alter_table("ind_enterprises") as table:
        table.add_column(sa.Column("chamber_key", sa.String(500), nullable=True))
        table.add_column(
            sa.Column("chamber_version", sa.Integer, nullable=False, server_default="0")
        )
    for name in PROJECTION:
        op.execute(sa.text(f"DELETE FROM {name}"))
    op.execute(sa.text("DELETE FROM inbox WHERE consumer LIKE 'indicators-projection-%'"))
    op.create_table(
        "ind_milestones",
        sa.Column("milestone_id", sa.String(36), primary_key=True),
        sa.Column("milestone", sa.String(100), nullable=False),
        sa.Column("indicator", sa.String(100), nullable=False),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("threshold", sa.Numeric(20, 4), nullable=False),
        sa.Column("value", sa.Numeric(20, 4), nullable=False),
        sa.Column("phase", sa.String(64), nullable=True),
        sa.Column("reached_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ind_milestones_reached_at", "ind_milestones", ["reached_at"])
