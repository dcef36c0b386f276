"""The records of `Idempotency-Key`s: a retried request gets the first answer and appends
nothing.

A key's record is written in the same transaction as the events it answers for, so a request
either appended and is remembered, or did neither. Keys belong to the token's subject, and
are kept for `SCORE_IDEMPOTENCY_TTL_HOURS` (24 by default).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.commands import Idempotency, KeyReused, Replayed
from score_chassis.database import Database
from score_chassis.prepared import Prepared
from score_chassis.tables import idempotency_keys

_OF_THE_KEY = (
    idempotency_keys.c.owner == sa.bindparam("owner"),
    idempotency_keys.c.key == sa.bindparam("key"),
)
_ANSWER = Prepared(
    sa.select(
        idempotency_keys.c.fingerprint, idempotency_keys.c.status_code, idempotency_keys.c.response
    ).where(*_OF_THE_KEY, idempotency_keys.c.created_at >= sa.bindparam("since"))
)
_FORGET = Prepared(
    idempotency_keys.delete().where(
        *_OF_THE_KEY, idempotency_keys.c.created_at < sa.bindparam("before")
    )
)
_REMEMBER = Prepared(idempotency_keys.insert())


async def answer_to(
    conn: AsyncConnection, idempotency: Idempotency, *, since: dt.datetime
) -> Replayed | None:
    """The answer remembered for the key since `since`; `KeyReused` if for other content."""
    rows = await _ANSWER.rows(
        conn, {"owner": idempotency.owner, "key": idempotency.key, "since": since}
    )
    if not rows:
        return None
    [(fingerprint, status_code, response)] = rows
    if fingerprint != idempotency.fingerprint:
        raise KeyReused(idempotency.key)
    return Replayed(status_code, response)


async def remember(
    conn: AsyncConnection,
    idempotency: Idempotency,
    answer: Replayed,
    *,
    now: dt.datetime,
    forgotten_before: dt.datetime,
) -> None:
    """Remember `answer` for the key: an expired record of the same key gives way, a live one
    makes the insert fail (`IntegrityError`)."""
    key = {"owner": idempotency.owner, "key": idempotency.key}
    await _FORGET.rows(conn, {**key, "before": forgotten_before})
    await _REMEMBER.rows(
        conn,
        {
            **key,
            "fingerprint": idempotency.fingerprint,
            "status_code": answer.status_code,
            "response": answer.body,
            "created_at": now,
        },
    )


async def forget_expired(database: Database, ttl: dt.timedelta) -> int:
    async with database.transaction() as conn:
        result = await conn.execute(
            idempotency_keys.delete().where(
                idempotency_keys.c.created_at < dt.datetime.now(dt.UTC) - ttl
            )
        )
    return int(result.rowcount or 0)
