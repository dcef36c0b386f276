"""the enterprise list: one row per enterprise, kept in the transaction of each append

Revision ID: enrolment_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "enrolment_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("enrolment",)
depends_on: str | Sequence[str] | None = "chassis_0002"


def upgrade() -> None:
    op.create_table(
        "enrolment_enterprises",
        sa.Column("enterprise_id", sa.String(64), primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("region", sa.String(64), nullable=False),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("tax_id", sa.String(500), nullable=False),
        sa.Column("tax_key", sa.String(500), nullable=False),
        sa.Column("sector", sa.String(500), nullable=False),
        sa.Column("chamber", sa.String(500), nullable=False),
        sa.Column("workforce_women", sa.Integer, nullable=False),
        sa.Column("workforce_men", sa.Integer, nullable=False),
        sa.Column("registered_on", sa.Date, nullable=False),
        sa.Column("withdrawn_on", sa.Date, nullable=True),
        sa.UniqueConstraint("country", "tax_key", name="uq_enrolment_enterprises_tax_key"),
    )
    op.create_index(
        "ix_enrolment_enterprises_region",
        "enrolment_enterprises",
        ["region", "enterprise_id"],
    )
