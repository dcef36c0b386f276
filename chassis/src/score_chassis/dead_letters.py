"""Dead letters: what a consumer could not handle, kept for an operator to look at, retry or
discard (ADR 020).

A row is written by `record`: by the idempotent consumer for a message that cannot be parsed or
whose handler failed `max_deliver` times, and by any other part of a service that gives up on
something it must not lose (a notification's last attempt). Each row names its *consumer*, and
the runtime keeps a `Retrier` per consumer name (`Runtime.dead_letter_retriers`): every
idempotent consumer registers one that applies the stored event again through its inbox, and a
service adds its own for what it records itself.

A retry runs the retrier and deletes the row in one transaction: it either happened, and the
row is gone, or it did not, and the row stays with the new error and one more attempt. A retry
of an event handled meanwhile (redelivered by a republish) finds its inbox row and changes
nothing, and the row goes all the same.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.database import Database
from score_chassis.decider import Refused
from score_chassis.errors import NotFound
from score_chassis.logs import get_logger
from score_chassis.metrics import DEAD_LETTERS, DEAD_LETTERS_NOW
from score_chassis.tables import dead_letters

log = get_logger(__name__)

ERROR_LIMIT = 4000
"""An error is kept to this many characters: a handler's exception can be long."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One row of `dead_letters`."""

    id: int
    consumer: str
    """Who gave up: a durable consumer's name, or a service's own (`notifications-delivery`)."""
    subject: str
    stream_sequence: int | None
    event_id: str | None
    deliveries: int
    """Attempts so far: deliveries before it was recorded, and a retry each since."""
    error: str
    """Why the last attempt failed. It can quote the payload: never logged."""
    payload: bytes
    """The message as it arrived (for a consumer's, a CloudEvent). Holds personal data."""
    recorded_at: dt.datetime

    @property
    def event_type(self) -> str | None:
        """The CloudEvent `type` of the payload, if it is a JSON object that names one."""
        try:
            body = json.loads(self.payload)
        except ValueError:
            return None
        kind = body.get("type") if isinstance(body, dict) else None
        return kind if isinstance(kind, str) else None


Retrier = Callable[[AsyncConnection, DeadLetter], Awaitable[None]]
"""Does again what a dead letter's consumer gave up on, in the transaction given (which then
deletes the row). Raises `NotRetriable` when it never can, anything else when it failed again."""


class NotRetriable(Refused):
    """A dead letter no retry can help: its consumer is gone, or its payload is not an event
    the consumer reads. The operator discards it (or fixes the service and retries)."""


@dataclass(frozen=True, slots=True)
class Retry:
    """What became of one dead letter asked to be retried."""

    id: int
    consumer: str
    event_id: str | None
    outcome: Literal["retried", "failed", "refused"]
    """`retried`: done, and the row is gone; `failed`: it failed again, and the row is kept
    with the new error; `refused`: it cannot be retried (`detail` says why)."""
    detail: str


async def record(
    conn: AsyncConnection,
    *,
    consumer: str,
    subject: str,
    event_id: str | None,
    deliveries: int,
    error: str,
    payload: bytes,
    stream_sequence: int | None = None,
) -> int:
    """Keep what `consumer` gave up on, in the caller's transaction; returns its id."""
    result = await conn.execute(
        dead_letters.insert()
        .values(
            consumer=consumer,
            subject=subject,
            stream_sequence=stream_sequence,
            event_id=event_id,
            deliveries=deliveries,
            error=error[:ERROR_LIMIT],
            payload=payload,
            recorded_at=dt.datetime.now(dt.UTC),
        )
        .returning(dead_letters.c.id)
    )
    DEAD_LETTERS.labels(consumer).inc()
    return int(result.scalar_one())


def _letter(row: sa.Row[tuple[object, ...]]) -> DeadLetter:
    m = row._mapping
    return DeadLetter(
        id=int(m["id"]),
        consumer=m["consumer"],
        subject=m["subject"],
        stream_sequence=m["stream_sequence"],
        event_id=m["event_id"],
        deliveries=int(m["deliveries"]),
        error=m["error"],
        payload=bytes(m["payload"]),
        recorded_at=_aware(m["recorded_at"]),
    )


def _aware(when: dt.datetime) -> dt.datetime:
    # SQLite gives back the naive UTC time it was given.
    return when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)


async def latest(
    conn: AsyncConnection,
    *,
    consumer: str | None = None,
    limit: int = 50,
    before: int | None = None,
) -> list[DeadLetter]:
    """Dead letters, newest first: `limit` of them, of `consumer` only if given, and with an id
    below `before` if given (the last id of the page before: ids only grow)."""
    query = sa.select(dead_letters).order_by(dead_letters.c.id.desc()).limit(limit)
    if consumer is not None:
        query = query.where(dead_letters.c.consumer == consumer)
    if before is not None:
        query = query.where(dead_letters.c.id < before)
    return [_letter(row) for row in await conn.execute(query)]


async def get(conn: AsyncConnection, letter_id: int, *, lock: bool = False) -> DeadLetter | None:
    """The dead letter `letter_id`; `lock`: held until the transaction ends (PostgreSQL), so
    that two retries of it at once run one after the other."""
    query = sa.select(dead_letters).where(dead_letters.c.id == letter_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _letter(row)


async def counts(conn: AsyncConnection) -> dict[str, int]:
    """How many dead letters each consumer has now (consumers with none are absent)."""
    result = await conn.execute(
        sa.select(dead_letters.c.consumer, sa.func.count()).group_by(dead_letters.c.consumer)
    )
    return {str(consumer): int(n) for consumer, n in result.all()}


async def measure(database: Database, consumers: Iterable[str] = ()) -> None:
    """Set the `score_dead_letters` gauge to what the table holds now, 0 for `consumers` that
    have none (so that a consumer whose letters were all retried shows 0, not its old count)."""
    async with database.transaction(write=False) as conn:
        now = await counts(conn)
    # No await from here on: a scrape never sees the gauge cleared and not yet set.
    DEAD_LETTERS_NOW.clear()
    for consumer in {*consumers, *now}:
        DEAD_LETTERS_NOW.labels(consumer).set(now.get(consumer, 0))


async def discard(database: Database, letter_id: int) -> DeadLetter:
    """Delete the dead letter `letter_id` for good; returns what it was. Raises NotFound."""
    async with database.transaction() as conn:
        letter = await get(conn, letter_id, lock=True)
        if letter is None:
            raise NotFound("dead letter", str(letter_id))
        await conn.execute(dead_letters.delete().where(dead_letters.c.id == letter_id))
    log.info(
        "dead_letter.discarded",
        id=letter_id,
        consumer=letter.consumer,
        event_id=letter.event_id,
    )
    return letter


async def retry(database: Database, retriers: Mapping[str, Retrier], letter_id: int) -> Retry:
    """Retry the dead letter `letter_id` with its consumer's retrier.

    Returns `retried` (the row is gone) or `failed` (the row is kept, with the new error and
    one more attempt). Raises NotFound for no such row, NotRetriable when no retry can help.
    """
    try:
        async with database.transaction() as conn:
            letter = await get(conn, letter_id, lock=True)
            if letter is None:
                raise NotFound("dead letter", str(letter_id))
            retrier = retriers.get(letter.consumer)
            if retrier is None:
                raise NotRetriable(
                    f"dead letter {letter_id} is of consumer {letter.consumer!r}, which this "
                    f"service no longer has (it has {', '.join(sorted(retriers)) or 'none'}): "
                    "nothing can retry it; discard it once it is dealt with",
                    rule="unknown-consumer",
                )
            await retrier(conn, letter)
            await conn.execute(dead_letters.delete().where(dead_letters.c.id == letter_id))
    except (NotFound, NotRetriable):
        raise
    except Exception as error:
        return await _failed_again(database, letter_id, error)
    log.info(
        "dead_letter.retried", id=letter_id, consumer=letter.consumer, event_id=letter.event_id
    )
    return Retry(letter_id, letter.consumer, letter.event_id, "retried", "applied; the row is gone")


async def _failed_again(database: Database, letter_id: int, error: Exception) -> Retry:
    reason = f"retry failed: {error!r}"[:ERROR_LIMIT]
    async with database.transaction() as conn:
        letter = await get(conn, letter_id, lock=True)
        if letter is None:  # retried or discarded by someone else meanwhile
            raise NotFound("dead letter", str(letter_id))
        await conn.execute(
            dead_letters.update()
            .where(dead_letters.c.id == letter_id)
            .values(error=reason, deliveries=dead_letters.c.deliveries + 1)
        )
    # The type only: the error's text can quote the payload.
    log.warning(
        "dead_letter.retry_failed",
        id=letter_id,
        consumer=letter.consumer,
        event_id=letter.event_id,
        error=type(error).__name__,
    )
    return Retry(letter_id, letter.consumer, letter.event_id, "failed", reason)


async def retry_all(
    database: Database, retriers: Mapping[str, Retrier], *, consumer: str | None = None
) -> list[Retry]:
    """Retry every dead letter there is now (of `consumer` only, if given), oldest first, each
    in its own transaction; what became of each. One that fails again is tried once only."""
    query = sa.select(dead_letters.c.id).order_by(dead_letters.c.id)
    if consumer is not None:
        query = query.where(dead_letters.c.consumer == consumer)
    async with database.transaction(write=False) as conn:
        ids = [int(letter_id) for letter_id in (await conn.execute(query)).scalars()]
    outcomes: list[Retry] = []
    for letter_id in ids:
        try:
            outcomes.append(await retry(database, retriers, letter_id))
        except NotFound:  # retried or discarded by someone else meanwhile
            continue
        except NotRetriable as refusal:
            async with database.transaction(write=False) as conn:
                letter = await get(conn, letter_id)
            if letter is not None:
                outcomes.append(
                    Retry(letter_id, letter.consumer, letter.event_id, "refused", refusal.message)
                )
    return outcomes
