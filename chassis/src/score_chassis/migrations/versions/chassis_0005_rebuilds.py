"""rebuilds under way: the consumers reading their streams again into a cleared view

Revision ID: chassis_0005
Revises: chassis_0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "chassis_0005"
down_revision: str | None = "chassis_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rebuilds",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("view", sa.String(100), nullable=False),
        sa.Column("until_sequence", sa.BigInteger, nullable=False),
        sa.Column("processed", sa.BigInteger, nullable=False),
        sa.Column("restarted", sa.Boolean, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
