"""Command handlers of the visits service: read the facts from the local views, then
load → fold → decide → append, recording where the visit stands in the same transaction."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import store
from score_chassis.commands import Outcome, handle, reported
from score_chassis.idempotency import AfterAppend
from score_chassis.logs import get_logger
from score_chassis.problems import NotFound
from score_chassis.runtime import Runtime
from score_chassis.store import NO_CAUSATION, Causation
from score_chassis.view import under_way
from score_contracts.events import Event, VisitScheduled
from score_contracts.subjects import subject_for
from score_visits import views
from score_visits.domain import Command, CompleteVisit, ScheduleVisit, Visit, visit
from score_visits.tables import visits

log = get_logger(__name__)


def stream_of(visit_id: str) -> str:
    return f"visit/{visit_id}"


async def load(runtime: Runtime, visit_id: str) -> tuple[Visit, int]:
    async with runtime.database.transaction(write=False) as conn:
        history = await store.load(conn, stream_of(visit_id))
    return visit.fold(e.payload() for e in history), len(history)


async def execute(
    runtime: Runtime,
    command: Command,
    *,
    causation: Causation = NO_CAUSATION,
    expected_version: int | None = None,
    after_append: AfterAppend | None = None,
) -> Outcome[Visit]:
    """Decide and append; an unknown visit is a 404, not a refusal.

    The facts are read before the append's transaction: an enrolment event arriving between
    the two is no different from one arriving a moment after the visit was decided.
    """
    decision = _decide_and_append(
        runtime,
        command,
        causation=causation,
        expected_version=expected_version,
        after_append=after_append,
    )
    # A cancellation's reason and an improvement's description are free text that may name
    # people: `reported` logs names, rules and versions only.
    stream_id = stream_of(command.visit_id)
    return await reported(command, stream_id, decision, on_appended=runtime.relay.notify)


async def _decide_and_append(
    runtime: Runtime,
    command: Command,
    *,
    causation: Causation,
    expected_version: int | None,
    after_append: AfterAppend | None,
) -> Outcome[Visit]:
    async with runtime.database.transaction(write=False) as conn:
        command, place = await _with_facts(conn, command)

    def subject(_state: Visit, event: Event) -> str:
        # A visit is published in its enterprise's region; decide refuses an enterprise
        # whose region is not known before any subject is needed.
        assert place is not None
        return subject_for(event, *place)

    async def record(conn: AsyncConnection, outcome: Outcome[Visit]) -> None:
        assert place is not None
        await _record(conn, outcome, *place)
        if after_append is not None:
            await after_append(conn, outcome)

    return await handle(
        runtime.database,
        visit,
        stream_of(command.visit_id),
        command,
        subject_of=subject,
        source=runtime.source,
        causation=causation,
        expected_version=expected_version,
        after_append=record,
    )


async def _with_facts(
    conn: AsyncConnection, command: Command
) -> tuple[Command, tuple[str, str] | None]:
    """The command with what the views know, and the (country, region) of the visit."""
    rebuilding = await under_way(conn, views.VIEW) is not None
    if isinstance(command, ScheduleVisit):
        enterprise = await views.enterprise_facts(conn, command.enterprise_id, rebuilding)
        trainer = await views.trainer_facts(conn, command.trainer_id)
        place = (
            (enterprise.country, enterprise.region)
            if enterprise.country is not None and enterprise.region is not None
            else None
        )
        return replace(command, enterprise=enterprise, trainer=trainer), place
    row = await visit_row(conn, command.visit_id)
    if row is None:
        raise NotFound("visit", command.visit_id)
    if isinstance(command, CompleteVisit):
        facts = await views.enterprise_facts(conn, row.enterprise_id, rebuilding)
        command = replace(command, enterprise=facts)
    return command, (row.country, row.region)


async def _record(
    conn: AsyncConnection, outcome: Outcome[Visit], country: str, region: str
) -> None:
    state = outcome.state
    assert state.scheduled_for is not None
    standing: dict[str, Any] = {
        "status": state.status,
        "completed_on": state.completed_on,
        "cancelled_on": state.cancelled_on,
        "improvements": len(state.improvements),
        "version": outcome.version,
    }
    if any(isinstance(event, VisitScheduled) for event in outcome.events):
        await conn.execute(
            visits.insert().values(
                visit_id=state.visit_id,
                enterprise_id=state.enterprise_id,
                trainer_id=state.trainer_id,
                module=state.module,
                country=country,
                region=region,
                scheduled_for=state.scheduled_for,
                **standing,
            )
        )
    else:
        await conn.execute(
            visits.update().where(visits.c.visit_id == state.visit_id).values(**standing)
        )


async def visit_row(conn: AsyncConnection, visit_id: str) -> sa.Row[Any] | None:
    """Where a visit stands, and the region it belongs to."""
    return (await conn.execute(sa.select(visits).where(visits.c.visit_id == visit_id))).first()


async def visits_of(
    runtime: Runtime, enterprise_id: str, *, regions: tuple[str, ...] | None = None
) -> list[sa.Row[Any]]:
    """An enterprise's visits, oldest first; only those in `regions` if given."""
    query = sa.select(visits).where(visits.c.enterprise_id == enterprise_id)
    if regions is not None:
        query = query.where(visits.c.region.in_(regions))
    async with runtime.database.transaction(write=False) as conn:
        result = await conn.execute(query.order_by(visits.c.scheduled_for, visits.c.visit_id))
        return list(result.all())


async def region_of(runtime: Runtime, visit_id: str) -> str | None:
    async with runtime.database.transaction(write=False) as conn:
        row = await visit_row(conn, visit_id)
    return None if row is None else str(row.region)
