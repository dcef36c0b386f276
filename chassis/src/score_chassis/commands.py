"""Command handling: load → fold → decide → append, in one transaction.

Without `If-Match` a command goes to whatever version the aggregate is at, and a concurrent
writer that got in first makes us decide again from the new state (a bounded number of
times). With `If-Match` the caller's version is binding and a mismatch is answered as such.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import store
from score_chassis.database import Database
from score_chassis.decider import Decider, Refused
from score_chassis.logs import get_logger
from score_chassis.problems import VersionMismatch
from score_chassis.store import NO_CAUSATION, Causation, ConcurrencyError, NewEvent
from score_contracts.events import Event

log = get_logger(__name__)

AnyOutcome = TypeVar("AnyOutcome", bound="Outcome[Any]")

State = TypeVar("State")
Command = TypeVar("Command")

RETRIES_ON_CONFLICT = 3


@dataclass(frozen=True)
class Outcome(Generic[State]):
    version: int
    events: list[Event]
    state: State


async def handle(
    database: Database,
    decider: Decider[Command, State, Event],
    stream_id: str,
    command: Command,
    *,
    subject_of: Callable[[State, Event], str],
    source: str,
    causation: Causation = NO_CAUSATION,
    expected_version: int | None = None,
    after_append: Callable[[AsyncConnection, Outcome[State]], Awaitable[None]] | None = None,
) -> Outcome[State]:
    """Decide `command` against the stream's state and append what it decides.

    `after_append` runs in the same transaction (read models, idempotency records).
    """
    for attempt in range(RETRIES_ON_CONFLICT + 1):
        try:
            async with database.transaction() as conn:
                history = await store.load(conn, stream_id)
                state = decider.fold(r.payload() for r in history)
                version = len(history)
                stale = expected_version is not None and expected_version != version
                # A stale version is answered before any rule, except for an aggregate that
                # does not exist: that is a 404 (the decider's), not a version to retry at.
                if stale and version > 0:
                    raise VersionMismatch(expected_version or 0, version)
                new = decider.decide(command, state)
                if stale:
                    raise VersionMismatch(expected_version or 0, version)
                after = decider.fold(new, state)
                new_version = await store.append(
                    conn,
                    stream_id,
                    version,
                    [NewEvent(e, subject_of(after, e)) for e in new],
                    causation=causation,
                    source=source,
                )
                outcome = Outcome(new_version, new, after)
                if after_append is not None:
                    await after_append(conn, outcome)
                return outcome
        except ConcurrencyError as conflict:
            if expected_version is not None:
                # Another writer took the version the caller named while we decided: the
                # caller's version is stale now, exactly as if it had been on arrival.
                raise VersionMismatch(expected_version, conflict.actual) from None
            if attempt == RETRIES_ON_CONFLICT:
                raise
    raise AssertionError("unreachable")


async def reported(
    command: object,
    stream_id: str,
    decision: Awaitable[AnyOutcome],
    *,
    on_appended: Callable[[], None],
) -> AnyOutcome:
    """Await a command's decide-and-append, log what became of it, and call `on_appended`
    (the relay's wake-up) when events were appended.

    Only the command's name, the stream, the rule of a refusal and the events' names and
    version are logged: payloads and refusal messages may carry personal data.
    """
    name = type(command).__name__
    try:
        outcome = await decision
    except Refused as refused:
        log.info("command.refused", command=name, stream_id=stream_id, rule=refused.rule)
        raise
    log.info(
        "command.handled",
        command=name,
        stream_id=stream_id,
        version=outcome.version,
        events=[event.event_name for event in outcome.events],
    )
    if outcome.events:
        on_appended()
    return outcome
