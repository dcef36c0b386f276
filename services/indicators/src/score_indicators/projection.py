"""Projects the enrolment and visits streams into the facts the indicators count.

Every handler is safe to run in any order: facts are keyed by event id (or by the
enterprise or trainer), and the one fact that is overwritten — an enterprise's workforce — only
ever moves forward in its aggregate's version. Duplicates never reach here: the consumer's
inbox drops them in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis import upsert
from score_chassis.view import View
from score_contracts.envelope import Envelope
from score_contracts.events import (
    CaseStudyPublished,
    EnterpriseDetailsCorrected,
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    Headcount,
    ModuleCompleted,
    ParticipantsTrained,
    TrainerCertified,
    TrainerRegistered,
    TrainingFeePaid,
    VisitCancelled,
    VisitCompleted,
    VisitScheduled,
)
from score_indicators.tables import (
    MONEY_SCALE,
    case_studies,
    certifications,
    completions,
    enrolments,
    enterprises,
    metadata,
    payments,
    trainers,
    trainings,
    visits,
)

PROJECTION = View("projection", "the indicators' projection")
"""The facts every indicator is counted from. While it is rebuilt the indicators are not
answered: a count of part of the history would pass for a fall in the programme's figures."""


async def clear(conn: AsyncConnection) -> None:
    """Forget every fact, for a rebuild from the streams."""
    for table in reversed(metadata.sorted_tables):
        await conn.execute(table.delete())


def money(amount: str) -> int:
    return int(Decimal(amount) * MONEY_SCALE)


async def project(conn: AsyncConnection, envelope: Envelope[Event]) -> None:
    """Apply one event to the projection (the consumer's handler)."""
    event, event_id = envelope.data, envelope.id
    match event:
        case EnterpriseRegistered():
            await _enterprise(
                conn,
                event.enterprise_id,
                identity={
                    "country": event.country,
                    "region": event.region,
                    "registered_on": event.registered_on,
                },
                workforce=event.workforce,
                version=envelope.streamversion,
            )
        case EnterpriseDetailsCorrected(workforce=Headcount() as workforce):
            await _enterprise(
                conn, event.enterprise_id, workforce=workforce, version=envelope.streamversion
            )
        case EnterpriseEnrolled():
            await _insert(
                conn,
                enrolments,
                enrolment_id=event.enrolment_id,
                enterprise_id=event.enterprise_id,
                module=event.module,
                delivery=event.delivery,
                cost=money(event.delivery_cost.amount),
                currency=event.delivery_cost.currency,
                enrolled_on=event.enrolled_on,
            )
        case ParticipantsTrained():
            await _insert(
                conn,
                trainings,
                event_id=event_id,
                enterprise_id=event.enterprise_id,
                enrolment_id=event.enrolment_id,
                module=event.module,
                trained_on=event.trained_on,
                managers_women=event.managers.women,
                managers_men=event.managers.men,
                workers_women=event.workers.women,
                workers_men=event.workers.men,
            )
        case TrainingFeePaid():
            await _insert(
                conn,
                payments,
                event_id=event_id,
                enterprise_id=event.enterprise_id,
                enrolment_id=event.enrolment_id,
                amount=money(event.amount.amount),
                currency=event.amount.currency,
                paid_on=event.paid_on,
            )
        case ModuleCompleted():
            await _insert(
                conn,
                completions,
                event_id=event_id,
                enterprise_id=event.enterprise_id,
                module=event.module,
                completed_on=event.completed_on,
            )
        case CaseStudyPublished():
            await _insert(
                conn,
                case_studies,
                event_id=event_id,
                enterprise_id=event.enterprise_id,
                published_on=event.published_on,
            )
        case TrainerRegistered():
            await _insert(
                conn,
                trainers,
                trainer_id=event.trainer_id,
                sex=event.sex,
                country=event.country,
                region=event.region,
                registered_on=event.registered_on,
            )
        case TrainerCertified():
            await _insert(
                conn,
                certifications,
                event_id=event_id,
                trainer_id=event.trainer_id,
                certified_on=event.certified_on,
            )
        case VisitScheduled() | VisitCompleted() | VisitCancelled():
            await _visit(conn, event_id, event)
        case _:
            pass  # withdrawals and notifications count towards nothing here


async def _insert(conn: AsyncConnection, table: sa.Table, **row: Any) -> None:
    await conn.execute(table.insert().values(**row))


async def _enterprise(
    conn: AsyncConnection,
    enterprise_id: str,
    *,
    workforce: Headcount,
    version: int,
    identity: dict[str, Any] | None = None,
) -> None:
    """Record what is known of an enterprise; a workforce only replaces an older one."""
    row = upsert.insert(conn, enterprises).values(
        enterprise_id=enterprise_id,
        workforce_women=workforce.women,
        workforce_men=workforce.men,
        workforce_version=version,
        **(identity or {}),
    )
    newer = row.excluded.workforce_version > enterprises.c.workforce_version
    changes: dict[str, Any] = {
        column: sa.case((newer, row.excluded[column]), else_=enterprises.c[column])
        for column in ("workforce_women", "workforce_men", "workforce_version")
    }
    changes.update({column: row.excluded[column] for column in identity or {}})
    await conn.execute(
        row.on_conflict_do_update(index_elements=[enterprises.c.enterprise_id], set_=changes)
    )


async def _visit(
    conn: AsyncConnection, event_id: str, event: VisitScheduled | VisitCompleted | VisitCancelled
) -> None:
    match event:
        case VisitScheduled():
            outcome, on_date, improvements = "scheduled", event.scheduled_for, 0
        case VisitCompleted():
            outcome, on_date, improvements = (
                "completed",
                event.completed_on,
                len(event.improvements),
            )
        case VisitCancelled():
            outcome, on_date, improvements = "cancelled", event.cancelled_on, 0
    await _insert(
        conn,
        visits,
        event_id=event_id,
        visit_id=event.visit_id,
        enterprise_id=event.enterprise_id,
        outcome=outcome,
        on_date=on_date,
        improvements=improvements,
    )
