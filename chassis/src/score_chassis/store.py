"""The event store: an append-only table of events with optimistic concurrency per stream.

A stream is one aggregate (`enterprise/<id>`); its events are numbered 1, 2, 3 … and
`(stream_id, version)` is unique, so two writers deciding from the same version cannot both
append. Every append also writes an outbox row in the same transaction, which the relay
publishes to JetStream.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.metrics import EVENTS_APPENDED
from score_chassis.prepared import Prepared
from score_chassis.tables import events, outbox
from score_contracts.events import BY_TYPE, Event
from score_contracts.ids import uuid7

if TYPE_CHECKING:
    from score_contracts.envelope import Envelope


class ConcurrencyError(Exception):
    """The stream moved on since it was read: reload, decide again, retry."""

    def __init__(self, stream_id: str, expected: int, actual: int | None = None) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"stream {stream_id} is at version {actual if actual is not None else '?'}, "
            f"expected {expected}"
        )


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be appended, with the NATS subject it will be published on."""

    event: Event
    subject: str
    event_id: str = field(default_factory=uuid7)


@dataclass(frozen=True, slots=True)
class Causation:
    """What led to an append: the request or event that started the chain (`correlation_id`),
    and the direct cause (`causation_id`: the HTTP request's id, or the causing event's).

    An append with neither starts a chain of its own: each of its events is its own cause
    and correlation (ADR 023), so that no published event has a null `causationid`.
    """

    correlation_id: str | None = None
    causation_id: str | None = None

    @classmethod
    def of_event(cls, envelope: Envelope[Event]) -> Causation:
        """For events caused by the event of `envelope`: caused by it, in its chain."""
        return cls(correlation_id=envelope.correlationid or envelope.id, causation_id=envelope.id)


NO_CAUSATION = Causation()


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    position: int
    event_id: str
    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: dt.datetime

    def payload(self) -> Event:
        return BY_TYPE[self.type].model_validate(self.data)


def row_to_event(row: Any) -> RecordedEvent:
    """A stored event from a row selected with the event columns."""
    return _event_of(
        (
            row.position,
            row.event_id,
            row.stream_id,
            row.version,
            row.type,
            row.data,
            row.metadata,
            row.occurred_at,
        )
    )


def _event_of(values: tuple[Any, ...]) -> RecordedEvent:
    """A stored event from the values of the event columns (`_COLUMNS`), in order."""
    position, event_id, stream_id, version, type_, data, metadata, occurred_at = values
    if occurred_at.tzinfo is None:  # SQLite keeps no zone; we only ever store UTC
        occurred_at = occurred_at.replace(tzinfo=dt.UTC)
    return RecordedEvent(position, event_id, stream_id, version, type_, data, metadata, occurred_at)


_COLUMNS = (
    events.c.position,
    events.c.event_id,
    events.c.stream_id,
    events.c.version,
    events.c.type,
    events.c.data,
    events.c.metadata,
    events.c.occurred_at,
)


# Every command runs these (score_chassis.prepared).
_LOAD = Prepared(
    sa.select(*_COLUMNS)
    .where(events.c.stream_id == sa.bindparam("stream_id"))
    .order_by(events.c.version)
)
_VERSION = Prepared(
    sa.select(sa.func.max(events.c.version)).where(events.c.stream_id == sa.bindparam("stream_id"))
)
_INSERT_EVENT = Prepared(events.insert().returning(events.c.position))
_INSERT_OUTBOX = Prepared(outbox.insert())
_EVENT_COLUMNS = ("event_id", "stream_id", "version", "type", "data", "metadata", "occurred_at")


def _inserted_with_its_outbox_row() -> sa.Insert:
    """On PostgreSQL, an event and its outbox row in one statement (one round trip):

    WITH appended AS (INSERT INTO events … RETURNING position)
    INSERT INTO outbox (position, subject) SELECT position, :subject FROM appended
    """
    appended = (
        events.insert()
        .values(
            {name: sa.bindparam(f"e_{name}", type_=events.c[name].type) for name in _EVENT_COLUMNS}
        )
        .returning(events.c.position)
        .cte("appended")
    )
    return outbox.insert().from_select(
        [outbox.c.position, outbox.c.subject],
        sa.select(appended.c.position, sa.bindparam("subject", type_=outbox.c.subject.type)),
    )


_INSERT_EVENT_AND_OUTBOX = Prepared(_inserted_with_its_outbox_row())


async def load(conn: AsyncConnection, stream_id: str) -> list[RecordedEvent]:
    """The events of one stream, in version order."""
    return [_event_of(row) for row in await _LOAD.rows(conn, {"stream_id": stream_id})]


async def stream_version(conn: AsyncConnection, stream_id: str) -> int:
    [(version,)] = await _VERSION.rows(conn, {"stream_id": stream_id})
    return int(version or 0)


async def append(
    conn: AsyncConnection,
    stream_id: str,
    expected_version: int,
    new_events: Sequence[NewEvent],
    *,
    causation: Causation = NO_CAUSATION,
    source: str,
    now: dt.datetime | None = None,
    loaded: bool = False,
) -> int:
    """Append events after `expected_version` and queue them for publishing.

    Returns the stream's new version. Raises `ConcurrencyError` when the stream is not at
    `expected_version`. Must run inside the caller's transaction, which also covers any
    read model or idempotency record the caller writes. `loaded`: the caller read the stream
    at that version in this transaction, so the version is not asked again — a writer that
    appended since is caught all the same, by the unique `(stream_id, version)`, which also
    catches any event already in a stream expected to be new (version 0).
    """
    if not new_events:
        return expected_version
    if not loaded and expected_version > 0:
        actual = await stream_version(conn, stream_id)
        if actual != expected_version:
            raise ConcurrencyError(stream_id, expected_version, actual)
    now = now or dt.datetime.now(dt.UTC)
    rows = [
        {
            "event_id": new.event_id,
            "stream_id": stream_id,
            "version": expected_version + offset,
            "type": new.event.event_type(),
            "data": new.event.model_dump(mode="json"),
            "metadata": {
                "source": source,
                "subject": new.subject,
                "correlation_id": causation.correlation_id or new.event_id,
                "causation_id": causation.causation_id or causation.correlation_id or new.event_id,
            },
            "occurred_at": now,
        }
        for offset, new in enumerate(new_events, start=1)
    ]
    try:
        if conn.dialect.name == "postgresql":
            for row, new in zip(rows, new_events, strict=True):
                await _INSERT_EVENT_AND_OUTBOX.rows(
                    conn,
                    {**{f"e_{name}": row[name] for name in _EVENT_COLUMNS}, "subject": new.subject},
                )
        else:  # SQLite: no insert in a WITH; two statements on the driver cost less anyway
            positions = [(await _INSERT_EVENT.rows(conn, row))[0][0] for row in rows]
            await _INSERT_OUTBOX.run_many(
                conn,
                [
                    {"position": position, "subject": new.subject}
                    for position, new in zip(positions, new_events, strict=True)
                ],
            )
    except IntegrityError as error:
        raise ConcurrencyError(stream_id, expected_version) from error
    for new in new_events:
        EVENTS_APPENDED.labels(new.event.event_type()).inc()
    return expected_version + len(new_events)


async def read_all(
    conn: AsyncConnection, *, after: int = 0, limit: int = 1000
) -> list[RecordedEvent]:
    """Events in global position order after `after` (for republishing and rebuilding)."""
    result = await conn.execute(
        sa.select(*_COLUMNS)
        .where(events.c.position > after)
        .order_by(events.c.position)
        .limit(limit)
    )
    return [row_to_event(row) for row in result]
