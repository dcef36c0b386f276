"""the relay's checkpoint per JetStream stream

Revision ID: chassis_0004
Revises: chassis_0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "chassis_0004"
down_revision: str | None = "chassis_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "relay_checkpoints",
        sa.Column("stream", sa.String(255), primary_key=True),
        sa.Column("stream_sequence", sa.BigInteger, nullable=False),
        sa.Column("stream_created", sa.String(64), nullable=True),
    )
