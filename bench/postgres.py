"""Fresh PostgreSQL databases for a run, on the server named by SCORE_TEST_POSTGRES_URL."""

from __future__ import annotations

import asyncio
import os
import uuid

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

SERVER_VARIABLE = "SCORE_TEST_POSTGRES_URL"


def server() -> str | None:
    """The server's URL (`postgresql+asyncpg://user@host:port/db`), if one is named."""
    return os.environ.get(SERVER_VARIABLE) or None


async def _execute(server_url: str, statement: str) -> None:
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await admin.dispose()


def fresh_database(server_url: str, purpose: str) -> str:
    """Create an empty database on the server; its URL, in the server URL's form."""
    name = f"score_bench_{purpose}_{uuid.uuid4().hex[:8]}"
    asyncio.run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_database(server_url: str, database_url: str) -> None:
    name = make_url(database_url).database
    asyncio.run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
