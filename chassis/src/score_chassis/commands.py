"""The one write path: a command goes through its route, in one transaction.

A service declares a `Route` per kind of command — its decider, the stream it goes to, the
subject each event is published on, the facts it needs from the service's own views, the read
models it keeps in step, and the answer it gives — and `Commands.execute` does the rest:

    answer recorded for this Idempotency-Key?  → that answer, nothing appended
    one transaction:
        facts from the service's views         → the command, informed
        load the stream (unless new), fold it  → state, version
        no event yet and the route changes one → NotFound (404), decided here only
        If-Match names another version         → VersionMismatch (412)
        decide                                 → events, or a refusal
        append (with its outbox rows)          → the new version
        remember the answer for the key, then keep the read models in step
    log what became of it; wake the relay up

Without `If-Match` a command goes to whatever version the aggregate is at, and a concurrent
writer that got in first makes it decide again from the new state (a bounded number of
times). With `If-Match` the caller's version is binding.

The route's functions receive a `Work`, the unit of work of one transaction: its `views` are
the service's own port to its read models (SQL in the service, a fake in its handler tests).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError

from score_chassis.decider import Decider, Refused
from score_chassis.errors import NotFound, VersionMismatch
from score_chassis.logs import get_logger
from score_chassis.store import NO_CAUSATION, Causation, ConcurrencyError, NewEvent, RecordedEvent
from score_contracts.events import Event

log = get_logger(__name__)

C = TypeVar("C")
S = TypeVar("S")
V = TypeVar("V")
V_co = TypeVar("V_co", covariant=True)
A = TypeVar("A", bound=BaseModel)

RETRIES_ON_CONFLICT = 3


@dataclass(frozen=True, slots=True)
class Outcome(Generic[S]):
    """What a command did: the stream's new version, the events appended, the state after."""

    version: int
    events: list[Event]
    state: S


@dataclass(frozen=True, slots=True)
class Idempotency:
    """A request's `Idempotency-Key`, whose it is, what identifies its content, and the status
    its answer is given with (a replay answers with the same)."""

    owner: str
    key: str
    fingerprint: str
    status_code: int


@dataclass(frozen=True, slots=True)
class Replayed:
    """The answer first given to a request with the same Idempotency-Key."""

    status_code: int
    body: dict[str, Any]


class KeyReused(Exception):
    """An Idempotency-Key already answered a request with other content."""


class Work(Protocol[V_co]):
    """One transaction: the event store, the idempotency records, the service's own views."""

    @property
    def views(self) -> V_co: ...

    async def load(self, stream_id: str) -> list[RecordedEvent]: ...

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[NewEvent],
        *,
        causation: Causation,
    ) -> int:
        """Append after `expected_version` (with the outbox rows); `ConcurrencyError` if the
        stream is not there."""
        ...

    async def answer_to(self, idempotency: Idempotency) -> Replayed | None:
        """The answer remembered for the key, if any; `KeyReused` if for other content."""
        ...

    async def remember(self, idempotency: Idempotency, answer: Replayed) -> None:
        """Remember the answer for the key; `IntegrityError` if a racing copy did first."""
        ...


class UnitOfWork(Protocol[V_co]):
    def begin(self, *, write: bool) -> AbstractAsyncContextManager[Work[V_co]]:
        """A transaction, committed when the block ends, rolled back when it raises."""
        ...


@dataclass(frozen=True)
class Route(Generic[C, S, A, V]):
    """How a service handles one kind of command."""

    decider: Decider[C, S, Event]
    stream_of: Callable[[C], str]
    """The aggregate's stream, e.g. `enterprise/<id>`."""
    subject_of: Callable[[C, S, Event], str]
    """The NATS subject an event is published on (from the state after the command)."""
    answer: Callable[[C, Outcome[S]], A]
    """The service's own answer to a command that went through."""
    aggregate: str
    """What the stream is of, in the programme's words (`enterprise`), for a 404."""
    creates: bool = False
    """The command makes a new aggregate, under an id minted for it: its stream is not read
    (were an event there, the append's unique version would refuse it). Otherwise an
    aggregate with no event is unknown (404)."""
    informed: Callable[[Work[V], C], Awaitable[C]] | None = None
    """The command with the facts its aggregate cannot see (the service's views, another
    stream), read in the append's transaction: a retry after a conflict reads them again. (On
    PostgreSQL, at READ COMMITTED, a fact committed meanwhile by another transaction can still
    be seen by a later statement of this one: what must be seen at one moment is read so.)"""
    recorded: Callable[[Work[V], C, Outcome[S]], Awaitable[None]] | None = None
    """Keeps the service's read models in step, in the append's transaction."""


def routes_like(**common: Any) -> Callable[..., Route[Any, Any, Any, Any]]:
    """Routes sharing most of their options, e.g. the commands of one aggregate:

    of_enterprise = routes_like(decider=enterprise, stream_of=..., aggregate="enterprise")
    {Enrol: of_enterprise(answer=enrolled), Withdraw: of_enterprise()}
    """

    def route(**own: Any) -> Route[Any, Any, Any, Any]:
        return Route(**(common | own))

    return route


@dataclass(frozen=True)
class Commands(Generic[V]):
    """A service's commands: their routes, and what they run on."""

    unit_of_work: UnitOfWork[V]
    routes: Mapping[type, Route[Any, Any, Any, V]]
    on_appended: Callable[[], None] = field(default=lambda: None)
    """Called when events were appended: the relay's wake-up."""

    def route(self, command: object) -> Route[Any, Any, Any, V]:
        try:
            return self.routes[type(command)]
        except KeyError:
            raise TypeError(f"no route for {type(command).__name__}") from None

    async def execute(
        self,
        command: object,
        *,
        causation: Causation = NO_CAUSATION,
        expected_version: int | None = None,
        idempotency: Idempotency | None = None,
    ) -> BaseModel | Replayed:
        """Run `command` through its route: its answer, or the one first given to its key."""
        route = self.route(command)
        if idempotency is not None and (first := await self._answered(idempotency)):
            return first
        name = type(command).__name__
        stream_id = route.stream_of(command)
        try:
            outcome, answer = await self._attempts(
                route, command, stream_id, causation, expected_version, idempotency
            )
        except (IntegrityError, Refused, VersionMismatch, ConcurrencyError) as error:
            # A copy of this request with the same key may have raced us and won: its key
            # collided with ours, or it committed first and ours was then decided against the
            # state it made (refused as a repeat, or at a version no longer current). The
            # client asked once: it gets the first answer.
            if idempotency is not None and (first := await self._answered(idempotency)):
                return first
            if isinstance(error, Refused):
                # Names only: payloads and refusal messages may carry personal data.
                log.info("command.refused", command=name, stream_id=stream_id, rule=error.rule)
            raise
        log.info(
            "command.handled",
            command=name,
            stream_id=stream_id,
            version=outcome.version,
            events=[event.event_name for event in outcome.events],
        )
        if outcome.events:
            self.on_appended()
        return answer

    async def _answered(self, idempotency: Idempotency) -> Replayed | None:
        async with self.unit_of_work.begin(write=False) as work:
            return await work.answer_to(idempotency)

    async def _attempts(
        self,
        route: Route[Any, Any, Any, V],
        command: object,
        stream_id: str,
        causation: Causation,
        expected_version: int | None,
        idempotency: Idempotency | None,
    ) -> tuple[Outcome[Any], BaseModel]:
        decider = route.decider
        for attempt in range(RETRIES_ON_CONFLICT + 1):
            try:
                async with self.unit_of_work.begin(write=True) as work:
                    informed = command
                    if route.informed is not None:
                        informed = await route.informed(work, command)
                    history = [] if route.creates else await work.load(stream_id)
                    version = len(history)
                    if version == 0 and not route.creates:
                        _, _, id_ = stream_id.partition("/")
                        raise NotFound(route.aggregate, id_)
                    if expected_version is not None and expected_version != version:
                        raise VersionMismatch(expected_version, version)
                    state = decider.fold(event.payload() for event in history)
                    new = decider.decide(informed, state)
                    after = decider.fold(new, state)
                    new_version = await work.append(
                        stream_id,
                        version,
                        [NewEvent(e, route.subject_of(informed, after, e)) for e in new],
                        causation=causation,
                    )
                    outcome = Outcome(new_version, new, after)
                    answer = route.answer(informed, outcome)
                    if idempotency is not None:
                        # First: two copies of one request racing collide on their key, and the
                        # second gets the first's answer, before a read model (the enterprise
                        # list's unique tax id) could take it for another request.
                        body = answer.model_dump(mode="json", exclude_none=True)
                        await work.remember(idempotency, Replayed(idempotency.status_code, body))
                    if route.recorded is not None:
                        await route.recorded(work, informed, outcome)
                    return outcome, answer
            except ConcurrencyError as conflict:
                if expected_version is not None:
                    # Another writer took the version the caller named while we decided: the
                    # caller's version is stale now, exactly as if it had been on arrival.
                    raise VersionMismatch(expected_version, conflict.actual) from None
                if attempt == RETRIES_ON_CONFLICT:
                    raise
        raise AssertionError("unreachable")
