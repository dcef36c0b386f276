"""The visits service's own tables: its local views of enterprises and trainers, built from
the enrolment stream, and where each of its visits stands.

The views keep only what the visit rules need — no names, tax ids or sex: facts about people
stay with the service that owns them. Every fact in them only ever grows (an enrolment is
added, a withdrawal recorded, a certification joined to the others), so applying the same
events in any order, or twice, builds the same view.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

enterprises = sa.Table(
    "vis_enterprises",
    metadata,
    sa.Column("enterprise_id", sa.String(64), primary_key=True),
    # Null until the enterprise's registration has arrived: only then is it known here.
    sa.Column("country", sa.String(2), nullable=True),
    sa.Column("region", sa.String(64), nullable=True),
    sa.Column("withdrawn_on", sa.Date, nullable=True),
)

enrolments = sa.Table(
    "vis_enrolments",
    metadata,
    sa.Column("enrolment_id", sa.String(64), primary_key=True),
    sa.Column("enterprise_id", sa.String(64), nullable=False, index=True),
    sa.Column("module", sa.Integer, nullable=False),
)

trainers = sa.Table(
    "vis_trainers",
    metadata,
    sa.Column("trainer_id", sa.String(64), primary_key=True),
)

certifications = sa.Table(
    "vis_certifications",
    metadata,
    sa.Column("trainer_id", sa.String(64), primary_key=True),
    sa.Column("module", sa.Integer, primary_key=True),
)

VIEWS = (enterprises, enrolments, trainers, certifications)
"""The tables built from the enrolment stream, which `score replay visits-views` rebuilds."""

visits = sa.Table(
    "vis_visits",
    metadata,
    sa.Column("visit_id", sa.String(64), primary_key=True),
    sa.Column("enterprise_id", sa.String(64), nullable=False, index=True),
    sa.Column("trainer_id", sa.String(64), nullable=False),
    sa.Column("module", sa.Integer, nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("region", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # scheduled, completed, cancelled
    sa.Column("scheduled_for", sa.Date, nullable=False),
    sa.Column("completed_on", sa.Date, nullable=True),
    sa.Column("cancelled_on", sa.Date, nullable=True),
    sa.Column("improvements", sa.Integer, nullable=False, server_default="0"),
    sa.Column("version", sa.Integer, nullable=False),
)
"""Where each visit stands, written in the same transaction as the visit's events: the list
of an enterprise's visits, and the region a visit belongs to."""
