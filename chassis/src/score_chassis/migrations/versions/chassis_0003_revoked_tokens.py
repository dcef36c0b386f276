"""revoked token ids, kept locally

Revision ID: chassis_0003
Revises: chassis_0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "chassis_0003"
down_revision: str | None = "chassis_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "revoked_tokens",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
    )
