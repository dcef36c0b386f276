"""Does a producer's stream hold what its event store says was published?

The event store is the source of truth and JetStream only the distribution log, so a broker
that lost or damaged its store (a deleted `nats/` folder, a restored backup, a purged stream)
leaves every service working while consumers, replays and downstream readers quietly miss
events. Nothing else notices: the relay has nothing pending, since JetStream had acknowledged
all of it. This check compares the two and names the first position to re-drive.

It is reported by `/readyz` and read by `score doctor`; it never makes a service unready: the
service's own writes and reads are unaffected, and refusing traffic would turn a distribution
problem into an outage of the writes that can still be taken.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from nats.js.errors import NotFoundError

from score_chassis.database import Database
from score_chassis.jetstream import NatsConnection
from score_chassis.tables import events, outbox
from score_contracts.subjects import STREAMS, StreamSpec

if TYPE_CHECKING:
    from score_chassis.runtime import Runtime

StreamState = Literal["ok", "behind", "absent", "unknown"]

CHECK_TIMEOUT_SECONDS = 0.5
"""A readiness probe must answer quickly, whatever NATS is doing."""


@dataclass(frozen=True, slots=True)
class StreamComparison:
    """A context's stream against its producer's store, as `/readyz` reports it."""

    stream: str
    state: StreamState
    """`ok`; `behind` (events published once are not in the stream); `absent` (no stream at
    all); `unknown` (NATS could not be asked)."""
    stored: int
    """Events in the store."""
    last_position: int | None
    """The store's last global position (None for an empty store)."""
    pending: int
    """Events still in the outbox: not yet published, so not expected in the stream."""
    in_stream: int | None
    """Messages in the stream (None when NATS could not be asked)."""
    missing: int | None
    """Published events the stream does not hold, at least (counts cannot see a lost event
    hidden by a duplicate a republish added beyond the duplicate window)."""
    republish_from: int | None
    """The first position to re-drive (`score republish <context> --from N`): after the last
    message when the stream holds exactly the store's head, else 1."""

    def as_check(self) -> dict[str, Any]:
        return asdict(self)


async def stream_check(runtime: Runtime) -> dict[str, Any]:
    """The `stream` check of `/readyz`: the service's own context's stream against its store."""
    spec = STREAMS[runtime.context]
    return (await compare_stream_with_store(runtime.database, runtime.nats, spec)).as_check()


async def compare_stream_with_store(
    database: Database, nats: NatsConnection, spec: StreamSpec
) -> StreamComparison:
    """Count the store, then the stream (in that order: an event published in between
    can only make the stream look ahead, never behind)."""
    stored, last_position, pending = await _store_counts(database)

    def comparison(
        state: StreamState, in_stream: int | None, republish_from: int | None = None
    ) -> StreamComparison:
        published = stored - pending
        missing = None if in_stream is None else max(0, published - in_stream)
        return StreamComparison(
            stream=spec.name,
            state=state,
            stored=stored,
            last_position=last_position,
            pending=pending,
            in_stream=in_stream,
            missing=missing,
            republish_from=republish_from,
        )

    if not nats.connected:
        return comparison("unknown", None)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            try:
                info = await nats.jetstream.stream_info(spec.name)
            except NotFoundError:
                return comparison("absent", 0, 1 if stored > pending else None)
            in_stream = int(info.state.messages or 0)
            if in_stream >= stored - pending:
                return comparison("ok", in_stream)
            start = await _first_missing(database, nats, spec, in_stream)
            return comparison("behind", in_stream, start)
    except Exception:  # NATS went away mid-check, or is too slow to say: not known now
        return comparison("unknown", None)


async def _store_counts(database: Database) -> tuple[int, int | None, int]:
    # One statement, so that the three numbers are of one moment.
    query = sa.select(
        sa.select(sa.func.count()).select_from(events).scalar_subquery(),
        sa.select(sa.func.max(events.c.position)).scalar_subquery(),
        sa.select(sa.func.count()).select_from(outbox).scalar_subquery(),
    )
    async with database.transaction(write=False) as conn:
        stored, last_position, pending = (await conn.execute(query)).one()
    return int(stored), None if last_position is None else int(last_position), int(pending)


async def _first_missing(
    database: Database, nats: NatsConnection, spec: StreamSpec, in_stream: int
) -> int:
    """The position after the stream's last message when the stream holds exactly every
    published event up to it (a lost tail, as after restoring an older copy); else 1."""
    if not in_stream:
        return 1
    try:
        # The last message on the stream's subjects; not the one at `last_seq`, which
        # stays the stream's last sequence number after that message is deleted.
        last = await nats.jetstream.get_last_msg(spec.name, spec.subjects[0])
    except NotFoundError:
        return 1
    event_id = (last.headers or {}).get("Nats-Msg-Id")
    if event_id is None:
        return 1
    async with database.transaction(write=False) as conn:
        position = (
            await conn.execute(sa.select(events.c.position).where(events.c.event_id == event_id))
        ).scalar_one_or_none()
        if position is None:  # a message the store does not know: say nothing clever
            return 1
        stored_up_to, pending_up_to = (
            await conn.execute(
                sa.select(
                    sa.select(sa.func.count())
                    .select_from(events)
                    .where(events.c.position <= position)
                    .scalar_subquery(),
                    sa.select(sa.func.count())
                    .select_from(outbox)
                    .where(outbox.c.position <= position)
                    .scalar_subquery(),
                )
            )
        ).one()
    # As many messages as events published up to the last one: the head is whole, and only
    # what follows it is missing.
    if int(stored_up_to) - int(pending_up_to) == in_stream:
        return int(position) + 1
    return 1
