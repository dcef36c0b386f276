"""the indicators projection

Revision ID: indicators_0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "indicators_0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = ("indicators",)
depends_on: str | Sequence[str] | None = "chassis_0001"


def upgrade() -> None:
    op.create_table(
        "ind_case_studies",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=False),
        sa.Column("published_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        op.f("ix_ind_case_studies_enterprise_id"),
        "ind_case_studies",
        ["enterprise_id"],
        unique=False,
    )
    op.create_table(
        "ind_certifications",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("trainer_id", sa.String(length=64), nullable=False),
        sa.Column("certified_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        op.f("ix_ind_certifications_trainer_id"), "ind_certifications", ["trainer_id"], unique=False
    )
    op.create_table(
        "ind_completions",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=False),
        sa.Column("module", sa.Integer(), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        op.f("ix_ind_completions_enterprise_id"), "ind_completions", ["enterprise_id"], unique=False
    )
    op.create_table(
        "ind_enrolments",
        sa.Column("enrolment_id", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=False),
        sa.Column("module", sa.Integer(), nullable=False),
        sa.Column("delivery", sa.String(length=16), nullable=False),
        sa.Column("cost", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("enrolled_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("enrolment_id"),
    )
    op.create_index(
        op.f("ix_ind_enrolments_enterprise_id"), "ind_enrolments", ["enterprise_id"], unique=False
    )
    op.create_table(
        "ind_enterprises",
        sa.Column("enterprise_id", sa.String(length=64), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("registered_on", sa.Date(), nullable=True),
        sa.Column("workforce_women", sa.Integer(), server_default="0", nullable=False),
        sa.Column("workforce_men", sa.Integer(), server_default="0", nullable=False),
        sa.Column("workforce_version", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("enterprise_id"),
    )
    op.create_table(
        "ind_payments",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=False),
        sa.Column("enrolment_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        op.f("ix_ind_payments_enterprise_id"), "ind_payments", ["enterprise_id"], unique=False
    )
    op.create_table(
        "ind_trainers",
        sa.Column("trainer_id", sa.String(length=64), nullable=False),
        sa.Column("sex", sa.String(length=8), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("registered_on", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("trainer_id"),
    )
    op.create_table(
        "ind_trainings",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=False),
        sa.Column("enrolment_id", sa.String(length=64), nullable=False),
        sa.Column("module", sa.Integer(), nullable=False),
        sa.Column("trained_on", sa.Date(), nullable=False),
        sa.Column("managers_women", sa.Integer(), nullable=False),
        sa.Column("managers_men", sa.Integer(), nullable=False),
        sa.Column("workers_women", sa.Integer(), nullable=False),
        sa.Column("workers_men", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        op.f("ix_ind_trainings_enterprise_id"), "ind_trainings", ["enterprise_id"], unique=False
    )
    op.create_table(
        "ind_visits",
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("visit_id", sa.String(length=64), nullable=False),
        sa.Column("enterprise_id", sa.String(length=64), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("improvements", sa.Integer(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("event_id"),
    )
    op.create_index(
        op.f("ix_ind_visits_enterprise_id"), "ind_visits", ["enterprise_id"], unique=False
    )
