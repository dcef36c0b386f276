"""the projection built beside the served one, for rebuilds with no downtime

Revision ID: indicators_0003
Revises: indicators_0002

One `ind_next_` table per table of the projection, with its columns and keys as the database
has them now (read from it), and no other index.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "indicators_0003"
down_revision: str | None = "indicators_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = "chassis_0007"

PROJECTION = (
    "ind_enterprises",
    "ind_enrolments",
    "ind_trainings",
    "ind_payments",
    "ind_completions",
    "ind_case_studies",
    "ind_trainers",
    "ind_certifications",
    "ind_visits",
)


def upgrade() -> None:
    bind = op.get_bind()
    for name in PROJECTION:
        served = sa.Table(name, sa.MetaData(), autoload_with=bind)
        beside = served.to_metadata(sa.MetaData(), name=f"ind_next_{name.removeprefix('ind_')}")
        beside.indexes.clear()
        beside.primary_key.name = None  # PostgreSQL's is named after the table: a new one
        beside.create(bind)
