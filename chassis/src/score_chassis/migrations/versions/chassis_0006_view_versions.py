"""view versions: a number per consumer of a view, moved with every change it makes

Revision ID: chassis_0006
Revises: chassis_0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "chassis_0006"
down_revision: str | None = "chassis_0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "view_versions",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("view", sa.String(100), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
