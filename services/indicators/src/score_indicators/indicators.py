"""The programme's indicators, exactly as DOMAIN.md defines them, counted from the projection
for one scope: a country, optionally one region, optionally a phase's date window."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_indicators.tables import (
    case_studies,
    certifications,
    completions,
    enrolments,
    enterprises,
    payments,
    trainers,
    trainings,
    visits,
)

Value = int | float | None


@dataclass(frozen=True, slots=True)
class Scope:
    country: str = "bo"
    region: str | None = None
    window: tuple[dt.date, dt.date] | None = None
    """Inclusive business-date window of a phase; None is since inception."""

    def within(self, column: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        if self.window is None:
            return sa.true()
        return column.between(*self.window)

    def enterprise_in_scope(self) -> sa.ColumnElement[bool]:
        clause = enterprises.c.country == self.country
        if self.region is not None:
            clause = sa.and_(clause, enterprises.c.region == self.region)
        return clause

    def trainer_in_scope(self) -> sa.ColumnElement[bool]:
        clause = trainers.c.country == self.country
        if self.region is not None:
            clause = sa.and_(clause, trainers.c.region == self.region)
        return clause


def percent(numerator: int | Decimal, denominator: int | Decimal) -> float | None:
    """A percentage with one decimal, or None where there is nothing to divide by."""
    if not denominator:
        return None
    value = Decimal(100) * Decimal(numerator) / Decimal(denominator)
    return float(value.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


def _of_enterprises(table: sa.Table, scope: Scope) -> sa.ColumnElement[bool]:
    return sa.and_(
        table.c.enterprise_id == enterprises.c.enterprise_id, scope.enterprise_in_scope()
    )


async def compute(conn: AsyncConnection, scope: Scope) -> dict[str, Value]:
    """Every indicator of the scope; each key is always present."""

    async def one(query: sa.Select[Any]) -> Any:
        return (await conn.execute(query)).one()

    async def grouped(query: sa.Select[Any]) -> dict[Any, int]:
        """`SELECT key, count … GROUP BY key` as a mapping."""
        return {key: int(value) for key, value in (await conn.execute(query)).all()}

    count = sa.func.count
    total = sa.func.coalesce

    def summed(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
        return total(sa.func.sum(column), 0)

    registered = await one(
        sa.select(count()).where(
            scope.enterprise_in_scope(),
            enterprises.c.registered_on.is_not(None),
            scope.within(enterprises.c.registered_on),
        )
    )
    enrolled = await one(
        sa.select(count(sa.distinct(enrolments.c.enterprise_id))).where(
            _of_enterprises(enrolments, scope), scope.within(enrolments.c.enrolled_on)
        )
    )
    in_window = sa.and_(_of_enterprises(trainings, scope), scope.within(trainings.c.trained_on))
    trained = await one(
        sa.select(
            count(sa.distinct(trainings.c.enterprise_id)),
            count(sa.distinct(enterprises.c.region)),
            summed(trainings.c.managers_women),
            summed(trainings.c.managers_men),
            summed(trainings.c.workers_women),
            summed(trainings.c.workers_men),
        ).where(in_window)
    )
    by_channel = await grouped(
        sa.select(enrolments.c.delivery, count(sa.distinct(trainings.c.enterprise_id)))
        .where(in_window, enrolments.c.enrolment_id == trainings.c.enrolment_id)
        .group_by(enrolments.c.delivery)
    )
    trained_ids = sa.select(trainings.c.enterprise_id).where(in_window).distinct()
    benefited = await one(
        sa.select(summed(enterprises.c.workforce_women), summed(enterprises.c.workforce_men)).where(
            enterprises.c.enterprise_id.in_(trained_ids)
        )
    )
    completed_by_module = await grouped(
        sa.select(completions.c.module, count())
        .where(_of_enterprises(completions, scope), scope.within(completions.c.completed_on))
        .group_by(completions.c.module)
    )
    trainer_sexes = await grouped(
        sa.select(trainers.c.sex, count())
        .where(scope.trainer_in_scope(), scope.within(trainers.c.registered_on))
        .group_by(trainers.c.sex)
    )
    certified_sexes = await grouped(
        sa.select(trainers.c.sex, count(sa.distinct(trainers.c.trainer_id)))
        .where(
            scope.trainer_in_scope(),
            certifications.c.trainer_id == trainers.c.trainer_id,
            scope.within(certifications.c.certified_on),
        )
        .group_by(trainers.c.sex)
    )
    visit_rows = (
        await conn.execute(
            sa.select(visits.c.outcome, count(), summed(visits.c.improvements))
            .where(_of_enterprises(visits, scope), scope.within(visits.c.on_date))
            .group_by(visits.c.outcome)
        )
    ).all()
    visit_counts = {row[0]: row[1] for row in visit_rows}
    improvements = sum(row[2] for row in visit_rows if row[0] == "completed")
    published = await one(
        sa.select(count()).where(
            _of_enterprises(case_studies, scope), scope.within(case_studies.c.published_on)
        )
    )
    costs = await grouped(
        sa.select(enrolments.c.module, summed(enrolments.c.cost))
        .where(_of_enterprises(enrolments, scope), scope.within(enrolments.c.enrolled_on))
        .group_by(enrolments.c.module)
    )
    fees = await grouped(
        sa.select(enrolments.c.module, summed(payments.c.amount))
        .where(
            _of_enterprises(payments, scope),
            payments.c.enrolment_id == enrolments.c.enrolment_id,
            scope.within(payments.c.paid_on),
        )
        .group_by(enrolments.c.module)
    )

    women_trainers = trainer_sexes.get("female", 0)
    men_trainers = trainer_sexes.get("male", 0)
    trainers_trained = women_trainers + men_trainers
    fee_m1, fee_rest = fees.get(1, 0), sum(v for m, v in fees.items() if m != 1)
    cost_m1, cost_rest = costs.get(1, 0), sum(v for m, v in costs.items() if m != 1)
    return {
        "enterprises_registered": registered[0],
        "enterprises_enrolled": enrolled[0],
        "enterprises_trained": trained[0],
        "enterprises_trained_direct": by_channel.get("direct", 0),
        "enterprises_trained_partner": by_channel.get("partner", 0),
        "modules_completed": sum(completed_by_module.values()),
        **{f"modules_completed_m{m}": completed_by_module.get(m, 0) for m in range(1, 6)},
        "participants_trained": int(sum(trained[2:6])),
        "managers_women": int(trained[2]),
        "managers_men": int(trained[3]),
        "workers_women": int(trained[4]),
        "workers_men": int(trained[5]),
        "employees_benefited": int(benefited[0] + benefited[1]),
        "employees_benefited_women": int(benefited[0]),
        "employees_benefited_men": int(benefited[1]),
        "trainers_trained": trainers_trained,
        "trainers_trained_women": women_trainers,
        "trainers_trained_men": men_trainers,
        "trainers_certified": sum(certified_sexes.values()),
        "trainers_certified_women": certified_sexes.get("female", 0),
        "trainers_certified_men": certified_sexes.get("male", 0),
        "women_share_trainers": percent(women_trainers, trainers_trained),
        "visits_scheduled": visit_counts.get("scheduled", 0),
        "visits_completed": visit_counts.get("completed", 0),
        "visits_cancelled": visit_counts.get("cancelled", 0),
        "improvements_recorded": int(improvements),
        "case_studies_published": published[0],
        "regions_active": trained[1],
        "cost_recovery_pct": percent(fee_m1 + fee_rest, cost_m1 + cost_rest),
        "cost_recovery_pct_module1": percent(fee_m1, cost_m1),
        "cost_recovery_pct_modules2to5": percent(fee_rest, cost_rest),
    }


INDICATORS: tuple[str, ...] = (
    "enterprises_registered",
    "enterprises_enrolled",
    "enterprises_trained",
    "enterprises_trained_direct",
    "enterprises_trained_partner",
    "modules_completed",
    "modules_completed_m1",
    "modules_completed_m2",
    "modules_completed_m3",
    "modules_completed_m4",
    "modules_completed_m5",
    "participants_trained",
    "managers_women",
    "managers_men",
    "workers_women",
    "workers_men",
    "employees_benefited",
    "employees_benefited_women",
    "employees_benefited_men",
    "trainers_trained",
    "trainers_trained_women",
    "trainers_trained_men",
    "trainers_certified",
    "trainers_certified_women",
    "trainers_certified_men",
    "women_share_trainers",
    "visits_scheduled",
    "visits_completed",
    "visits_cancelled",
    "improvements_recorded",
    "case_studies_published",
    "regions_active",
    "cost_recovery_pct",
    "cost_recovery_pct_module1",
    "cost_recovery_pct_modules2to5",
)
"""Every key `GET /v1/indicators` answers, in DOMAIN.md's order."""
