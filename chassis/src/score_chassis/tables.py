"""The tables every service has: its event store, outbox, inbox and dead letters, and the
relay's checkpoint of what each JetStream stream holds.

The schema itself is created by the Alembic migrations in `migrations/`; these
definitions are what the code queries through.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); PostgreSQL wants BIGINT.
Position = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

events = sa.Table(
    "events",
    metadata,
    sa.Column("position", Position, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False, unique=True),
    sa.Column("stream_id", sa.String(200), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("type", sa.String(200), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("metadata", sa.JSON, nullable=False),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("position", Position, sa.ForeignKey("events.position"), primary_key=True),
    sa.Column("subject", sa.String(255), nullable=False),
)

relay_checkpoints = sa.Table(
    "relay_checkpoints",
    metadata,
    sa.Column("stream", sa.String(255), primary_key=True),
    # Every message of the stream up to this sequence is known to the outbox: its row is gone.
    sa.Column("stream_sequence", sa.BigInteger, nullable=False),
    # When JetStream says the stream was created: a stream deleted and made again restarts its
    # sequences, and then the sequence above means nothing.
    sa.Column("stream_created", sa.String(64), nullable=True),
)

inbox = sa.Table(
    "inbox",
    metadata,
    sa.Column("consumer", sa.String(100), primary_key=True),
    sa.Column("event_id", sa.String(36), primary_key=True),
    sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", Position, primary_key=True, autoincrement=True),
    sa.Column("consumer", sa.String(100), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("stream_sequence", sa.BigInteger, nullable=True),
    sa.Column("event_id", sa.String(36), nullable=True),
    sa.Column("deliveries", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

idempotency_keys = sa.Table(
    "idempotency_keys",
    metadata,
    sa.Column("owner", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("status_code", sa.Integer, nullable=False),
    sa.Column("response", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

revoked_tokens = sa.Table(
    "revoked_tokens",
    metadata,
    sa.Column("token_id", sa.String(64), primary_key=True),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
)

rebuilds = sa.Table(
    "rebuilds",
    metadata,
    sa.Column("consumer", sa.String(100), primary_key=True),
    sa.Column("view", sa.String(100), nullable=False),
    sa.Column("until_sequence", sa.BigInteger, nullable=False),
    sa.Column("processed", sa.BigInteger, nullable=False),
    sa.Column("restarted", sa.Boolean, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("beside", sa.Boolean, nullable=False, server_default=sa.false()),
)
"""A consumer reading its stream again from the start into a cleared view: one row per consumer
of the view, written with the clear, deleted when all have caught up (see `view.py`). Or, with
`beside`, a consumer of its own filling tables beside the served view, which stays whole until
they replace it (`rebuild.py`)."""

view_versions = sa.Table(
    "view_versions",
    metadata,
    sa.Column("consumer", sa.String(100), primary_key=True),
    sa.Column("view", sa.String(100), nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
)
"""How many transactions of each consumer of a view have changed it (and its rebuilds): moved
in the transaction that changes the view, so that a read that finds the same numbers reads the
same view (`view.Kept`)."""
