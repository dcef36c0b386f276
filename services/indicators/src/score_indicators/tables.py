"""The projection: the facts of the programme that the indicators are counted from.

The facts are kept one row per event (or per enterprise/trainer), and the indicators are
computed from them by query. Counting at read time makes the projection independent of the
order events arrive in, lets any scope (country, region, phase window) be asked without
keeping a counter for each, and makes a rebuild from the streams trivially the same.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Money is kept in ten-thousandths of the currency unit: exact sums on SQLite too.
MONEY_SCALE = 10_000

enterprises = sa.Table(
    "ind_enterprises",
    metadata,
    sa.Column("enterprise_id", sa.String(64), primary_key=True),
    sa.Column("country", sa.String(2), nullable=True),
    sa.Column("region", sa.String(64), nullable=True),
    sa.Column("registered_on", sa.Date, nullable=True),
    sa.Column("workforce_women", sa.Integer, nullable=False, server_default="0"),
    sa.Column("workforce_men", sa.Integer, nullable=False, server_default="0"),
    sa.Column("workforce_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("chamber_key", sa.String(500), nullable=True),
    sa.Column("chamber_version", sa.Integer, nullable=False, server_default="0"),
)
"""`chamber_key`: the enterprise's chamber as chambers are compared (`chamber_key()`); like the
workforce, only replaced by a later version of the enterprise."""

enrolments = sa.Table(
    "ind_enrolments",
    metadata,
    sa.Column("enrolment_id", sa.String(64), primary_key=True),
    sa.Column("enterprise_id", sa.String(64), nullable=False, index=True),
    sa.Column("module", sa.Integer, nullable=False),
    sa.Column("delivery", sa.String(16), nullable=False),
    sa.Column("cost", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("enrolled_on", sa.Date, nullable=False),
)

trainings = sa.Table(
    "ind_trainings",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("enterprise_id", sa.String(64), nullable=False, index=True),
    sa.Column("enrolment_id", sa.String(64), nullable=False),
    sa.Column("module", sa.Integer, nullable=False),
    sa.Column("trained_on", sa.Date, nullable=False),
    sa.Column("managers_women", sa.Integer, nullable=False),
    sa.Column("managers_men", sa.Integer, nullable=False),
    sa.Column("workers_women", sa.Integer, nullable=False),
    sa.Column("workers_men", sa.Integer, nullable=False),
)

payments = sa.Table(
    "ind_payments",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("enterprise_id", sa.String(64), nullable=False, index=True),
    sa.Column("enrolment_id", sa.String(64), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("paid_on", sa.Date, nullable=False),
)

completions = sa.Table(
    "ind_completions",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("enterprise_id", sa.String(64), nullable=False, index=True),
    sa.Column("module", sa.Integer, nullable=False),
    sa.Column("completed_on", sa.Date, nullable=False),
)

case_studies = sa.Table(
    "ind_case_studies",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("enterprise_id", sa.String(64), nullable=False, index=True),
    sa.Column("published_on", sa.Date, nullable=False),
)

trainers = sa.Table(
    "ind_trainers",
    metadata,
    sa.Column("trainer_id", sa.String(64), primary_key=True),
    sa.Column("sex", sa.String(8), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("registered_on", sa.Date, nullable=False),
)

certifications = sa.Table(
    "ind_certifications",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("trainer_id", sa.String(64), nullable=False, index=True),
    sa.Column("certified_on", sa.Date, nullable=False),
)

visits = sa.Table(
    "ind_visits",
    metadata,
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("visit_id", sa.String(64), nullable=False),
    sa.Column("enterprise_id", sa.String(64), nullable=False, index=True),
    sa.Column("outcome", sa.String(16), nullable=False),  # scheduled, completed, cancelled
    sa.Column("on_date", sa.Date, nullable=False),
    sa.Column("improvements", sa.Integer, nullable=False, server_default="0"),
)


def chamber_key(chamber: str) -> str:
    """A chamber as chambers are compared: case- and space-insensitively (DOMAIN.md)."""
    return "".join(chamber.split()).casefold()


beside = sa.MetaData()
NEXT: dict[str, sa.Table] = {
    table.name: table.to_metadata(beside, name=f"ind_next_{table.name.removeprefix('ind_')}")
    for table in metadata.sorted_tables
}
"""The projection being built beside the served one, by name of the table it replaces (see
`score_chassis.rebuild`): the same columns and keys, no other index (nothing reads it but the
switch, which reads it whole). A migration that changes a table of the projection changes its
`ind_next_` table alike."""
for _table in NEXT.values():
    _table.indexes.clear()
