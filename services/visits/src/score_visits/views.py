"""The local views of enterprises and trainers, projected from the enrolment stream.

This is the only way the visits service learns enrolment's facts: it never reads enrolment's
database nor calls its API. The handler runs inside the idempotent consumer's transaction,
which also writes the inbox row that makes a redelivered event change nothing.

Applying the events in any order gives the same view, because no fact is ever overwritten by
an older one:

- an enrolment is a row keyed by its enrolment id, added once;
- a certification adds (trainer, module) rows: the modules are the union of all of them;
- a withdrawal sets a date that is never unset (the earliest, should two ever arrive);
- an enterprise's country and region come from its registration alone, which no later event
  of the enterprise changes, so a registration arriving after its withdrawal adds the region
  and leaves the withdrawal alone.

No fact here is replaced by a later version of itself, so no stream version needs keeping;
a fact that some day is (a region correction, say) must keep its aggregate's `streamversion`
and only move forward.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import upsert
from score_chassis.consumer import BatchHandler
from score_chassis.view import View
from score_contracts.envelope import Envelope
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    Event,
    TrainerCertified,
    TrainerRegistered,
)
from score_visits.domain import EnterpriseFacts, TrainerFacts
from score_visits.tables import VIEWS, certifications, enrolments, enterprises, trainers

DURABLE = "visits-views-enrolment"
"""The durable consumer of SCORE_ENROLMENT that builds these views."""

VIEW = View("views", "the visits service's view of enterprises and trainers", served=False)
"""What `score replay visits-views` rebuilds.

Only decisions read it: scheduling and completing a visit. While it is rebuilt they are refused
as not known yet (409, retryable, as clients already treat a fact that has not arrived), since
a partly rebuilt view may lack a withdrawal and would accept what must be refused; a 503 would
tell clients nothing more and ask them to handle another answer. The service's reads — a
visit, an enterprise's visits — come from its own event store and `vis_visits`, which a rebuild
does not touch, so they go on answering, and the service stays ready.
"""


Fact = Literal["registered", "withdrawn", "enrolment", "trainer", "certification"]
"""A kind of fact the views hold: each is written by a statement of its own."""
Row = dict[str, Any]


async def project_all(conn: AsyncConnection, envelopes: Sequence[Envelope[Event]]) -> None:
    """Apply a batch of enrolment events to the views: one `executemany` per kind of fact.

    The facts do not depend on the order they are applied in (above), so grouping them by
    statement changes nothing; a statement per event was most of the consumer's time.
    """
    rows: dict[Fact, list[Row]] = {}
    for envelope in envelopes:
        for fact, row in facts_of(envelope.data):
            rows.setdefault(fact, []).append(row)
    for fact, group in rows.items():
        await conn.execute(_statement(conn.dialect.name, fact), group)


project = BatchHandler(project_all)
"""The consumer's handler: it hands over the new events of each batch at once."""


def facts_of(event: Event) -> list[tuple[Fact, Row]]:
    """The rows an event adds to the views, each with the kind of fact it is."""
    match event:
        case EnterpriseRegistered():
            row: Row = {
                "enterprise_id": event.enterprise_id,
                "country": event.country,
                "region": event.region,
            }
            return [("registered", row)]
        case EnterpriseEnrolled():
            row = {
                "enrolment_id": event.enrolment_id,
                "enterprise_id": event.enterprise_id,
                "module": event.module,
            }
            return [("enrolment", row)]
        case EnterpriseWithdrawn():
            row = {"enterprise_id": event.enterprise_id, "withdrawn_on": event.withdrawn_on}
            return [("withdrawn", row)]
        case TrainerRegistered():
            return [("trainer", {"trainer_id": event.trainer_id})]
        case TrainerCertified():
            certified: list[tuple[Fact, Row]] = [
                ("certification", {"trainer_id": event.trainer_id, "module": module})
                for module in sorted(set(event.modules))
            ]
            return [("trainer", {"trainer_id": event.trainer_id}), *certified]
        case _:
            return []  # trainings, fees, completions, corrections, case studies decide no visit


@functools.cache
def _statement(dialect: str, fact: Fact) -> sa.Insert:
    """The statement that writes a kind of fact, built once per database kind."""
    table = {
        "registered": enterprises,
        "withdrawn": enterprises,
        "enrolment": enrolments,
        "trainer": trainers,
        "certification": certifications,
    }[fact]
    insert = upsert.insert_on(dialect, table)
    match fact:
        case "registered":
            return insert.on_conflict_do_update(
                index_elements=[enterprises.c.enterprise_id],
                set_={"country": insert.excluded.country, "region": insert.excluded.region},
            )
        case "withdrawn":
            known, arrived = enterprises.c.withdrawn_on, insert.excluded.withdrawn_on
            earliest = sa.case((known.is_(None), arrived), (arrived < known, arrived), else_=known)
            return insert.on_conflict_do_update(
                index_elements=[enterprises.c.enterprise_id], set_={"withdrawn_on": earliest}
            )
        case _:
            return insert.on_conflict_do_nothing()  # a fact added once


async def clear(conn: AsyncConnection) -> None:
    """Empty the views, for a rebuild from the stream."""
    for table in VIEWS:
        await conn.execute(table.delete())


async def enterprise_facts(
    conn: AsyncConnection, enterprise_id: str, rebuilding: bool = False
) -> EnterpriseFacts:
    row = (
        await conn.execute(
            sa.select(enterprises).where(enterprises.c.enterprise_id == enterprise_id)
        )
    ).first()
    modules = await conn.execute(
        sa.select(enrolments.c.module).where(enrolments.c.enterprise_id == enterprise_id)
    )
    return EnterpriseFacts(
        known=row is not None and row.region is not None,
        country=row.country if row is not None else None,
        region=row.region if row is not None else None,
        modules=frozenset(modules.scalars()),
        withdrawn_on=row.withdrawn_on if row is not None else None,
        rebuilding=rebuilding,
    )


async def trainer_facts(conn: AsyncConnection, trainer_id: str) -> TrainerFacts:
    known = (
        await conn.execute(
            sa.select(trainers.c.trainer_id).where(trainers.c.trainer_id == trainer_id)
        )
    ).first()
    modules = await conn.execute(
        sa.select(certifications.c.module).where(certifications.c.trainer_id == trainer_id)
    )
    return TrainerFacts(known=known is not None, modules=frozenset(modules.scalars()))
