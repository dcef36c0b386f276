"""rebuilds beside the served view: a rebuild's rows say whether it clears the view or fills
tables beside it

Revision ID: chassis_0007
Revises: chassis_0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "chassis_0007"
down_revision: str | None = "chassis_0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rebuilds") as table:
        table.add_column(sa.Column("beside", sa.Boolean, nullable=False, server_default=sa.false()))
