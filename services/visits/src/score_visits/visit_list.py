"""The visit list: one row per visit, where it stands and in which region, written in the
transaction that appends the visit's events; and the `VisitViews` port on SQL."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.commands import Outcome
from score_chassis.view import under_way
from score_contracts.events import VisitScheduled
from score_visits import views
from score_visits.domain import EnterpriseFacts, Place, TrainerFacts, Visit
from score_visits.tables import visits


async def record(conn: AsyncConnection, outcome: Outcome[Visit], place: Place) -> None:
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
        country, region = place
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
    conn: AsyncConnection, enterprise_id: str, *, regions: tuple[str, ...] | None = None
) -> list[sa.Row[Any]]:
    """An enterprise's visits, oldest first; only those in `regions` if given."""
    query = sa.select(visits).where(visits.c.enterprise_id == enterprise_id)
    if regions is not None:
        query = query.where(visits.c.region.in_(regions))
    result = await conn.execute(query.order_by(visits.c.scheduled_for, visits.c.visit_id))
    return list(result.all())


class LocalViews:
    """The views and the visit list on the connection of one transaction."""

    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def enterprise_facts(self, enterprise_id: str) -> EnterpriseFacts:
        # Asked before and after the facts: on PostgreSQL each statement of a write
        # transaction sees what committed since the last, and a rebuild clears the views and
        # marks them in one commit, so facts read from cleared views find the mark after.
        before = await under_way(self.conn, views.VIEW) is not None
        facts = await views.enterprise_facts(self.conn, enterprise_id, before)
        if not before and await under_way(self.conn, views.VIEW) is not None:
            return replace(facts, rebuilding=True)
        return facts

    async def trainer_facts(self, trainer_id: str) -> TrainerFacts:
        return await views.trainer_facts(self.conn, trainer_id)

    async def place_of(self, visit_id: str) -> tuple[str, Place] | None:
        row = await visit_row(self.conn, visit_id)
        return None if row is None else (str(row.enterprise_id), (row.country, row.region))

    async def record(self, outcome: Outcome[Visit], place: Place) -> None:
        await record(self.conn, outcome, place)
