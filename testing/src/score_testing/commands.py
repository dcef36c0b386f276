"""An in-memory unit of work, for a service's handler tier: given events, when a command
goes through its route, then these events and this answer — in milliseconds, with no
database and no NATS.

    uow = FakeUnitOfWork(FakeEnterpriseList()).given(registered, enrolled)
    answer = await Commands(uow, handlers.routes(SizeRange())).execute(train())
    assert uow.appended == [trained] and answer == Written(id="ent-1", version=3)

It keeps what the real one promises: a transaction appends all or nothing (a failure rolls
its events and idempotency records back), `(stream, version)` is unique, a key's record is
written once. The service's views are its own fake, given to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Generic, Self, TypeVar

from sqlalchemy.exc import IntegrityError

from score_chassis.commands import Idempotency, KeyReused, Replayed
from score_chassis.store import Causation, ConcurrencyError, NewEvent, RecordedEvent
from score_contracts.events import Event
from score_contracts.ids import uuid7

V = TypeVar("V")

MOMENT = dt.datetime(2018, 3, 12, 15, 4, 11, tzinfo=dt.UTC)
"""When the fake records events: a fixed moment, so that answers compare equal."""


class FakeWork(Generic[V]):
    def __init__(self, unit: FakeUnitOfWork[V]) -> None:
        self._unit = unit

    @property
    def views(self) -> V:
        return self._unit.views

    async def load(self, stream_id: str) -> list[RecordedEvent]:
        return [event for event in self._unit.events if event.stream_id == stream_id]

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        causation: Causation,
    ) -> int:
        actual = len(await self.load(stream_id))
        if actual != expected_version:
            raise ConcurrencyError(stream_id, expected_version, actual)
        for offset, new in enumerate(events, start=1):
            self._unit.record(stream_id, expected_version + offset, new, causation)
        return expected_version + len(events)

    async def answer_to(self, idempotency: Idempotency) -> Replayed | None:
        found = self._unit.answers.get((idempotency.owner, idempotency.key))
        if found is None:
            return None
        fingerprint, answer = found
        if fingerprint != idempotency.fingerprint:
            raise KeyReused(idempotency.key)
        return answer

    async def remember(self, idempotency: Idempotency, answer: Replayed) -> None:
        key = (idempotency.owner, idempotency.key)
        if key in self._unit.answers:
            raise IntegrityError("INSERT INTO idempotency_keys", None, Exception("duplicate"))
        self._unit.answers[key] = (idempotency.fingerprint, answer)


class FakeUnitOfWork(Generic[V]):
    """The event store and idempotency records in memory, with the service's fake views."""

    def __init__(self, views: V) -> None:
        self.views = views
        self.events: list[RecordedEvent] = []
        self.subjects: list[str] = []
        """The subject of every event appended since `given`, in order."""
        self.answers: dict[tuple[str, str], tuple[str, Replayed]] = {}
        self.transactions = 0
        self._given = 0

    def given(self, *history: Event) -> Self:
        """Events already in the store, each in its aggregate's stream."""
        for event in history:
            stream_id = event.aggregate_subject
            version = sum(1 for e in self.events if e.stream_id == stream_id) + 1
            self.record(stream_id, version, NewEvent(event, "given"), Causation())
        self._given = len(self.events)
        self.subjects.clear()
        return self

    @property
    def appended(self) -> list[Event]:
        """The events appended since `given`, in order."""
        return [event.payload() for event in self.events[self._given :]]

    def record(self, stream_id: str, version: int, new: NewEvent, causation: Causation) -> None:
        self.events.append(
            RecordedEvent(
                position=len(self.events) + 1,
                event_id=new.event_id or uuid7(),
                stream_id=stream_id,
                version=version,
                type=new.event.event_type(),
                data=new.event.model_dump(mode="json"),
                metadata={
                    "subject": new.subject,
                    "correlation_id": causation.correlation_id,
                    "causation_id": causation.causation_id,
                },
                occurred_at=MOMENT,
            )
        )
        self.subjects.append(new.subject)

    @asynccontextmanager
    async def begin(self, *, write: bool) -> AsyncIterator[FakeWork[V]]:
        events, subjects, answers = list(self.events), list(self.subjects), dict(self.answers)
        self.transactions += 1
        try:
            yield FakeWork(self)
        except BaseException:
            self.events, self.subjects, self.answers = events, subjects, answers
            raise
