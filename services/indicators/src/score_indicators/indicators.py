"""The programme's indicators, exactly as DOMAIN.md defines them, counted from the projection
for one scope (a country, optionally one region, optionally a phase's date window), or for
each region of a country at once."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_contracts.reference import REGIONS
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


def _count(*where: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
    """How many rows `where` holds."""
    return sa.func.count().filter(sa.and_(*where))


def _sum(column: sa.ColumnElement[Any], *where: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    """The sum of `column` over the rows `where` holds (all without `where`), 0 over none."""
    total = sa.func.sum(column)
    return sa.func.coalesce(total.filter(sa.and_(*where)) if where else total, 0)


def _of_enterprises(table: sa.Table, scope: Scope) -> sa.ColumnElement[bool]:
    return sa.and_(
        table.c.enterprise_id == enterprises.c.enterprise_id, scope.enterprise_in_scope()
    )


def _by_region(
    select: sa.Select[*tuple[Any, ...]], region: sa.ColumnElement[Any], by_region: bool
) -> sa.Select[Any]:
    """`select`, one row per region of `region` if `by_region`, else its one row."""
    if not by_region:
        return select
    return select.add_columns(region.label("region")).group_by(region)


def _enterprises_counted(scope: Scope, by_region: bool = False) -> sa.Select[Any]:
    """Enterprises registered, and enrolled, in the scope."""
    enrolled = sa.exists().where(
        enrolments.c.enterprise_id == enterprises.c.enterprise_id,
        scope.within(enrolments.c.enrolled_on),
    )
    counted = sa.select(
        _count(
            enterprises.c.registered_on.is_not(None),
            scope.within(enterprises.c.registered_on),
        ).label("enterprises_registered"),
        _count(enrolled).label("enterprises_enrolled"),
    ).where(scope.enterprise_in_scope())
    return _by_region(counted, enterprises.c.region, by_region)


PARTICIPANTS = ("managers_women", "managers_men", "workers_women", "workers_men")


def _trainings_counted(scope: Scope, by_region: bool = False) -> sa.Select[Any]:
    """Enterprises trained in the scope (in all, through each channel, in how many regions),
    their workforce, and the participants.

    The trainings are read once, gathered by enterprise, and each enterprise is then looked up
    once: distinct enterprises counted without `count(DISTINCT …)` sorting the trainings, and
    every figure of the trainings from one pass over them."""
    delivery = enrolments.c.delivery
    each = (
        sa.select(
            trainings.c.enterprise_id,
            _count(delivery == "direct").label("direct"),
            _count(delivery == "partner").label("partner"),
            *(sa.func.sum(trainings.c[column]).label(column) for column in PARTICIPANTS),
        )
        .select_from(
            trainings.outerjoin(enrolments, enrolments.c.enrolment_id == trainings.c.enrolment_id)
        )
        .where(scope.within(trainings.c.trained_on))
        .group_by(trainings.c.enterprise_id)
        .subquery()
    )
    counted = (
        sa.select(
            sa.func.count().label("enterprises_trained"),
            _count(each.c.direct > 0).label("enterprises_trained_direct"),
            _count(each.c.partner > 0).label("enterprises_trained_partner"),
            sa.func.count(sa.distinct(enterprises.c.region)).label("regions_active"),
            _sum(enterprises.c.workforce_women).label("employees_benefited_women"),
            _sum(enterprises.c.workforce_men).label("employees_benefited_men"),
            *(_sum(each.c[column]).label(column) for column in PARTICIPANTS),
        )
        .select_from(each.join(enterprises, enterprises.c.enterprise_id == each.c.enterprise_id))
        .where(scope.enterprise_in_scope())
    )
    return _by_region(counted, enterprises.c.region, by_region)


def _modules_counted(scope: Scope, by_region: bool = False) -> sa.Select[Any]:
    counted = sa.select(
        sa.func.count().label("modules_completed"),
        *(_count(completions.c.module == m).label(f"modules_completed_m{m}") for m in range(1, 6)),
    ).where(_of_enterprises(completions, scope), scope.within(completions.c.completed_on))
    return _by_region(counted, enterprises.c.region, by_region)


def _trainers_counted(scope: Scope, by_region: bool = False) -> sa.Select[Any]:
    """Trainers registered in the window, and trainers certified in it (whenever registered),
    by sex."""
    registered = scope.within(trainers.c.registered_on)
    certified = sa.exists().where(
        certifications.c.trainer_id == trainers.c.trainer_id,
        scope.within(certifications.c.certified_on),
    )
    women, men = trainers.c.sex == "female", trainers.c.sex == "male"
    counted = sa.select(
        _count(registered, women).label("trainers_trained_women"),
        _count(registered, men).label("trainers_trained_men"),
        _count(certified).label("trainers_certified"),
        _count(certified, women).label("trainers_certified_women"),
        _count(certified, men).label("trainers_certified_men"),
    ).where(scope.trainer_in_scope())
    return _by_region(counted, trainers.c.region, by_region)


def _visits_counted(scope: Scope, by_region: bool = False) -> sa.Select[Any]:
    outcome = visits.c.outcome
    counted = sa.select(
        _count(outcome == "scheduled").label("visits_scheduled"),
        _count(outcome == "completed").label("visits_completed"),
        _count(outcome == "cancelled").label("visits_cancelled"),
        _sum(visits.c.improvements, outcome == "completed").label("improvements_recorded"),
    ).where(_of_enterprises(visits, scope), scope.within(visits.c.on_date))
    return _by_region(counted, enterprises.c.region, by_region)


def _case_studies_counted(scope: Scope, by_region: bool = False) -> sa.Select[Any]:
    counted = sa.select(sa.func.count().label("case_studies_published")).where(
        _of_enterprises(case_studies, scope), scope.within(case_studies.c.published_on)
    )
    return _by_region(counted, enterprises.c.region, by_region)


def _costs_counted(scope: Scope, by_region: bool = False) -> sa.Select[Any]:
    """Delivery cost of the enrolments made in the window, Module 1 and the rest."""
    module_1 = enrolments.c.module == 1
    counted = sa.select(
        _sum(enrolments.c.cost, module_1).label("cost_module1"),
        _sum(enrolments.c.cost, sa.not_(module_1)).label("cost_modules2to5"),
    ).where(_of_enterprises(enrolments, scope), scope.within(enrolments.c.enrolled_on))
    return _by_region(counted, enterprises.c.region, by_region)


def _fees_counted(scope: Scope, by_region: bool = False) -> sa.Select[Any]:
    """Fees paid in the window, on Module 1 enrolments and on the rest."""
    module_1 = enrolments.c.module == 1
    counted = sa.select(
        _sum(payments.c.amount, module_1).label("fees_module1"),
        _sum(payments.c.amount, sa.not_(module_1)).label("fees_modules2to5"),
    ).where(
        _of_enterprises(payments, scope),
        payments.c.enrolment_id == enrolments.c.enrolment_id,
        scope.within(payments.c.paid_on),
    )
    return _by_region(counted, enterprises.c.region, by_region)


_PARTS = (
    _enterprises_counted,
    _trainings_counted,
    _modules_counted,
    _trainers_counted,
    _visits_counted,
    _case_studies_counted,
    _costs_counted,
    _fees_counted,
)
"""The figures, a statement each, of one scope or of each of its country's regions."""


@functools.lru_cache(maxsize=1024)
def _counting(scope: Scope) -> sa.Select[Any]:
    """One statement counting every figure of `scope`: one row, a column a figure.

    One statement is one round trip to the database, where a busy service waits for its turn
    at each; and it is built once per scope, as building it costs more than running it on a
    projection of thousands of facts. The scopes are few: countries, regions and phases.
    """
    parts = [part(scope).subquery() for part in _PARTS]
    joined: sa.FromClause = parts[0]
    for part in parts[1:]:
        joined = joined.join(part, sa.true())  # each is one row
    return sa.select(*(column for part in parts for column in part.c)).select_from(joined)


@functools.lru_cache(maxsize=256)
def _counting_regions(scope: Scope) -> tuple[sa.Select[Any], ...]:
    """The statements counting the figures of each region of `scope`'s country, a row each
    (a region with nothing has no row)."""
    return tuple(part(scope, True) for part in _PARTS)


async def compute(conn: AsyncConnection, scope: Scope) -> dict[str, Value]:
    """Every indicator of the scope; each key is always present."""
    row = (await conn.execute(_counting(scope))).one()._mapping
    return _indicators({figure: int(value) for figure, value in row.items()})


async def compute_regions(
    conn: AsyncConnection, country: str, window: tuple[dt.date, dt.date] | None = None
) -> dict[str, dict[str, Value]]:
    """Every indicator of each region of `country` (within `window`), by region slug: what
    `compute` counts for each region's scope, in a statement per kind of fact for them all
    rather than in one for each region."""
    counts: dict[str, dict[str, int]] = {}
    for statement in _counting_regions(Scope(country=country, window=window)):
        for row in (await conn.execute(statement)).mappings():
            figures = counts.setdefault(row["region"], {})
            figures.update({k: int(v) for k, v in row.items() if k != "region"})
    return {
        region: _indicators({**_FIGURES_OF_NONE, **counts.get(region, {})})
        for region in REGIONS[country]
    }


def _indicators(n: dict[str, int]) -> dict[str, Value]:
    """The indicators from the figures counted (money in ten-thousandths)."""
    trainers_trained = n["trainers_trained_women"] + n["trainers_trained_men"]
    fees = n["fees_module1"] + n["fees_modules2to5"]
    costs = n["cost_module1"] + n["cost_modules2to5"]
    values: dict[str, Value] = {
        **n,
        "participants_trained": sum(n[column] for column in PARTICIPANTS),
        "employees_benefited": n["employees_benefited_women"] + n["employees_benefited_men"],
        "trainers_trained": trainers_trained,
        "women_share_trainers": percent(n["trainers_trained_women"], trainers_trained),
        "cost_recovery_pct": percent(fees, costs),
        "cost_recovery_pct_module1": percent(n["fees_module1"], n["cost_module1"]),
        "cost_recovery_pct_modules2to5": percent(n["fees_modules2to5"], n["cost_modules2to5"]),
    }
    return {indicator: values[indicator] for indicator in INDICATORS}


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

_FIGURES_OF_NONE: dict[str, int] = {
    column.name: 0 for part in _PARTS for column in part(Scope()).subquery().c
}
"""Every figure counted, at 0: what a region with no row in a statement has."""
