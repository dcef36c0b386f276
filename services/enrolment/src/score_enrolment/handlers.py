"""Command handlers of the enrolment service: load → fold → decide → append."""

from __future__ import annotations

from score_chassis import store
from score_chassis.commands import Outcome, handle
from score_chassis.idempotency import AfterAppend
from score_chassis.problems import NotFound
from score_chassis.runtime import Runtime
from score_chassis.store import NO_CAUSATION, Causation
from score_contracts.events import Event
from score_contracts.subjects import subject_for
from score_enrolment.domain import Command, Enterprise, RegisterEnterprise, SizeRange, enterprise
from score_enrolment.settings import EnrolmentSettings


def stream_of(enterprise_id: str) -> str:
    return f"enterprise/{enterprise_id}"


def size_range(runtime: Runtime) -> SizeRange:
    settings = runtime.settings
    assert isinstance(settings, EnrolmentSettings)
    return SizeRange(settings.size_minimum, settings.size_maximum)


def _subject(state: Enterprise, event: Event) -> str:
    return subject_for(event, state.country, state.region)


async def load(runtime: Runtime, enterprise_id: str) -> tuple[Enterprise, int]:
    async with runtime.database.transaction(write=False) as conn:
        history = await store.load(conn, stream_of(enterprise_id))
    return enterprise.fold(e.payload() for e in history), len(history)


async def execute(
    runtime: Runtime,
    command: Command,
    *,
    causation: Causation = NO_CAUSATION,
    expected_version: int | None = None,
    after_append: AfterAppend | None = None,
) -> Outcome[Enterprise]:
    """Decide and append; an unknown enterprise is a 404, not a refusal."""
    if not isinstance(command, RegisterEnterprise):
        state, _ = await load(runtime, command.enterprise_id)
        if not state.registered:
            raise NotFound("enterprise", command.enterprise_id)
    outcome = await handle(
        runtime.database,
        enterprise,
        stream_of(command.enterprise_id),
        command,
        subject_of=_subject,
        source=runtime.source,
        causation=causation,
        expected_version=expected_version,
        after_append=after_append,
    )
    runtime.relay.notify()
    return outcome
