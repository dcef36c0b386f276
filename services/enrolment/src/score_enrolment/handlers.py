"""Command handlers of the enrolment service: load → fold → decide → append.

A command to an enterprise or trainer that was never registered is answered as unknown (404),
not refused: there is nothing for a rule to judge. Commands learn here what their aggregate
cannot see for itself: the configured size range, another enterprise's tax id, whether a
trainer is registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import store
from score_chassis.commands import Outcome, handle, reported
from score_chassis.decider import Decider
from score_chassis.idempotency import AfterAppend
from score_chassis.logs import get_logger
from score_chassis.problems import NotFound
from score_chassis.runtime import Runtime
from score_chassis.store import NO_CAUSATION, Causation, RecordedEvent
from score_contracts.events import Event
from score_contracts.subjects import subject_for
from score_enrolment import enterprise_list
from score_enrolment.enterprise import Command as EnterpriseCommand
from score_enrolment.enterprise import (
    Enterprise,
    RecordTraining,
    RegisterEnterprise,
    SizeRange,
    enterprise,
)
from score_enrolment.settings import EnrolmentSettings
from score_enrolment.trainer import CertifyTrainer, RegisterTrainer, Trainer, trainer
from score_enrolment.trainer import Command as TrainerCommand

log = get_logger(__name__)

Command = EnterpriseCommand | TrainerCommand


class Aggregate(Protocol):
    @property
    def registered(self) -> bool: ...
    @property
    def country(self) -> str: ...
    @property
    def region(self) -> str: ...


C = TypeVar("C")
S = TypeVar("S", bound=Aggregate)


def enterprise_stream(enterprise_id: str) -> str:
    return f"enterprise/{enterprise_id}"


def trainer_stream(trainer_id: str) -> str:
    return f"trainer/{trainer_id}"


def _of_registered(
    decider: Decider[C, S, Event], what: str, registration: type, id_of: Callable[[C], str]
) -> Decider[C, S, Event]:
    """`decider`, answering a command to an aggregate never registered with NotFound."""

    def decide(command: C, state: S) -> list[Event]:
        if not state.registered and not isinstance(command, registration):
            raise NotFound(what, id_of(command))
        return decider.decide(command, state)

    return replace(decider, decide=decide)


_enterprises = _of_registered(
    enterprise, "enterprise", RegisterEnterprise, lambda command: command.enterprise_id
)
_trainers = _of_registered(trainer, "trainer", RegisterTrainer, lambda command: command.trainer_id)


def _subject(state: Aggregate, event: Event) -> str:
    # An aggregate's events are published under its own region, so that a chamber can be
    # given `score.<country>.<region>.>` and see exactly its enterprises and trainers.
    return subject_for(event, state.country, state.region)


def size_range(runtime: Runtime) -> SizeRange:
    settings = runtime.settings
    assert isinstance(settings, EnrolmentSettings)
    return SizeRange(settings.size_minimum, settings.size_maximum)


async def load_enterprise(
    runtime: Runtime, enterprise_id: str
) -> tuple[Enterprise, list[RecordedEvent]]:
    """The enterprise's state and the events it was folded from."""
    async with runtime.database.transaction(write=False) as conn:
        history = await store.load(conn, enterprise_stream(enterprise_id))
    return enterprise.fold(e.payload() for e in history), history


async def load_trainer(runtime: Runtime, trainer_id: str) -> tuple[Trainer, list[RecordedEvent]]:
    """The trainer's state and the events it was folded from."""
    async with runtime.database.transaction(write=False) as conn:
        history = await store.load(conn, trainer_stream(trainer_id))
    return trainer.fold(e.payload() for e in history), history


async def _informed(runtime: Runtime, command: EnterpriseCommand) -> EnterpriseCommand:
    """`command` with what the enterprise cannot see for itself."""
    match command:
        case RegisterEnterprise():
            async with runtime.database.transaction(write=False) as conn:
                holder = await enterprise_list.tax_id_holder(conn, command.country, command.tax_id)
            return replace(command, size_range=size_range(runtime), tax_id_registered_to=holder)
        case RecordTraining(trainer_id=str(trainer_id)):
            known, _ = await load_trainer(runtime, trainer_id)
            return replace(command, trainer_registered=known.registered)
    return command


def _then(
    first: AfterAppend | None, then: Callable[[AsyncConnection, Outcome[Enterprise]], Any]
) -> AfterAppend:
    async def both(conn: AsyncConnection, outcome: Outcome[Enterprise]) -> None:
        if first is not None:
            await first(conn, outcome)
        await then(conn, outcome)

    return both


def stream_of(command: Command) -> str:
    if isinstance(command, RegisterTrainer | CertifyTrainer):
        return trainer_stream(command.trainer_id)
    return enterprise_stream(command.enterprise_id)


async def execute(
    runtime: Runtime,
    command: Command,
    *,
    causation: Causation = NO_CAUSATION,
    expected_version: int | None = None,
    after_append: AfterAppend | None = None,
) -> Outcome[Enterprise] | Outcome[Trainer]:
    """Decide `command` and append what it decides; `after_append` runs in the same
    transaction (the idempotency record)."""
    stream_id = stream_of(command)
    decision = _decide_and_append(
        runtime,
        command,
        stream_id,
        causation=causation,
        expected_version=expected_version,
        after_append=after_append,
    )
    return await reported(command, stream_id, decision, on_appended=runtime.relay.notify)


async def _decide_and_append(
    runtime: Runtime,
    command: Command,
    stream_id: str,
    *,
    causation: Causation,
    expected_version: int | None,
    after_append: AfterAppend | None,
) -> Outcome[Enterprise] | Outcome[Trainer]:
    options: dict[str, Any] = {
        "subject_of": _subject,
        "source": runtime.source,
        "causation": causation,
        "expected_version": expected_version,
    }
    if isinstance(command, RegisterTrainer | CertifyTrainer):
        return await handle(
            runtime.database, _trainers, stream_id, command, after_append=after_append, **options
        )
    command = await _informed(runtime, command)
    return await handle(
        runtime.database,
        _enterprises,
        stream_id,
        command,
        # The idempotency record goes first: two copies of one request racing then collide
        # on their key, and the second gets the first's answer, before the enterprise list
        # could take the second for another registration of the same tax id.
        after_append=_then(after_append, enterprise_list.record),
        **options,
    )
