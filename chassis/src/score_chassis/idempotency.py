"""`Idempotency-Key` on writes: a retried request gets the first answer and appends nothing.

The key's record is written in the same transaction as the events it answers for, so a
request either appended and is remembered, or did neither. Keys belong to the token's
subject, and are kept for `SCORE_IDEMPOTENCY_TTL_HOURS` (24 by default).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import sqlalchemy as sa
from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.auth import InvalidToken, TokenAuthority
from score_chassis.database import Database
from score_chassis.decider import Refused
from score_chassis.problems import VersionMismatch
from score_chassis.store import ConcurrencyError
from score_chassis.tables import idempotency_keys

Answer = TypeVar("Answer", bound=BaseModel)
AfterAppend = Callable[[AsyncConnection, Any], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Idempotency:
    """The key a request came with (None without one) and what identifies its content."""

    owner: str
    key: str | None
    fingerprint: str


async def _idempotency(
    request: Request,
    idempotency_key: Annotated[
        str | None,
        Header(
            description="Any unique string (a UUID, say). A retry with the same key and "
            "body returns the first answer and changes nothing.",
            max_length=200,
        ),
    ] = None,
) -> Idempotency:
    body = await request.body()
    digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).hexdigest()
    return Idempotency(owner=_owner(request), key=idempotency_key, fingerprint=digest)


def _owner(request: Request) -> str:
    """Keys belong to whoever the token names (the auth dependency refuses bad tokens)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        with contextlib.suppress(InvalidToken):
            authority: TokenAuthority = request.app.state.tokens
            return authority.verify(token).subject
    return "anonymous"


IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]


async def _previous(
    database: Database, idempotency: Idempotency, ttl: dt.timedelta
) -> JSONResponse | None:
    if idempotency.key is None:
        return None
    async with database.transaction(write=False) as conn:
        row = (
            await conn.execute(
                sa.select(idempotency_keys).where(
                    idempotency_keys.c.owner == idempotency.owner,
                    idempotency_keys.c.key == idempotency.key,
                    idempotency_keys.c.created_at >= dt.datetime.now(dt.UTC) - ttl,
                )
            )
        ).first()
    if row is None:
        return None
    if row.fingerprint != idempotency.fingerprint:
        raise RequestValidationError(
            [
                {
                    "loc": ("header", "idempotency-key"),
                    "msg": "was already used for a different request",
                    "type": "value_error",
                }
            ]
        )
    return JSONResponse(
        row.response, status_code=row.status_code, headers={"Idempotent-Replayed": "true"}
    )


async def write_once(
    database: Database,
    idempotency: Idempotency,
    execute: Callable[..., Awaitable[Any]],
    answer: Callable[[Any], Answer],
    *,
    status_code: int,
    ttl: dt.timedelta = dt.timedelta(hours=24),
) -> Answer | JSONResponse:
    """Run a write at most once per idempotency key.

    `execute(after_append=hook)` runs the command and calls the hook inside the append's
    transaction; `answer` turns the command's outcome into the response body.
    """
    previous = await _previous(database, idempotency, ttl)
    if previous is not None:
        return previous
    if idempotency.key is None:
        return answer(await execute(after_append=None))

    async def remember(conn: AsyncConnection, outcome: Any) -> None:
        # An expired record of the same key gives way; a live one makes the insert fail.
        await conn.execute(
            idempotency_keys.delete().where(
                idempotency_keys.c.owner == idempotency.owner,
                idempotency_keys.c.key == idempotency.key,
                idempotency_keys.c.created_at < dt.datetime.now(dt.UTC) - ttl,
            )
        )
        await conn.execute(
            idempotency_keys.insert().values(
                owner=idempotency.owner,
                key=idempotency.key,
                fingerprint=idempotency.fingerprint,
                status_code=status_code,
                response=answer(outcome).model_dump(mode="json", exclude_none=True),
                created_at=dt.datetime.now(dt.UTC),
            )
        )

    try:
        return answer(await execute(after_append=remember))
    except (IntegrityError, Refused, VersionMismatch, ConcurrencyError):
        # A copy of this request with the same key may have raced us and won: either its
        # key collided with ours, or it committed first and ours was then decided against
        # the state it made (refused as a repeat, or at a version no longer current). The
        # client asked once: it gets the first answer.
        previous = await _previous(database, idempotency, ttl)
        if previous is None:
            raise
        return previous


async def forget_expired(database: Database, ttl: dt.timedelta) -> int:
    async with database.transaction() as conn:
        result = await conn.execute(
            idempotency_keys.delete().where(
                idempotency_keys.c.created_at < dt.datetime.now(dt.UTC) - ttl
            )
        )
    return int(result.rowcount or 0)
