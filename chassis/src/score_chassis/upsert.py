"""`INSERT … ON CONFLICT` on SQLite and PostgreSQL alike, for views that merge facts."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert(conn: AsyncConnection, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """The connection's dialect's INSERT, which knows `on_conflict_do_…`.

    The clause is spelled alike on both databases, but each dialect has its own construct.
    """
    return insert_on(conn.dialect.name, table)


def insert_on(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """`insert` for a dialect named (`conn.dialect.name`): for a statement built once per
    database kind and kept."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
