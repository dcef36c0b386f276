"""Enterprises and participants trained, month by month, for one scope.

The months are counted from the same facts and with the same definitions as the indicators
(`score_indicators.indicators`): an enterprise counts in the month of its first training in
the scope's window, so that the months of a scope add up to its `enterprises_trained`; the
participants of each training count in the month it was given, adding up to its
`participants_trained`. A training counts only where its enterprise is known in the scope
(its latest known country and region), as it does there.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_indicators.indicators import PARTICIPANTS, Scope
from score_indicators.tables import enterprises, trainings

Month = tuple[int, int]
"""A calendar month as (year, month)."""


@dataclass(frozen=True, slots=True)
class MonthTrained:
    """What was trained in one month, and the totals up to its end."""

    month: str
    """As `YYYY-MM`."""
    enterprises_trained: int
    participants_trained: int
    enterprises_trained_to_date: int
    participants_trained_to_date: int


def _in_scope(scope: Scope) -> sa.ColumnElement[bool]:
    return sa.and_(
        trainings.c.enterprise_id == enterprises.c.enterprise_id,
        scope.enterprise_in_scope(),
        scope.within(trainings.c.trained_on),
    )


@functools.lru_cache(maxsize=256)
def _first_trainings(scope: Scope) -> sa.Select[Any]:
    """How many enterprises had their first training (in the window) on each day."""
    first = (
        sa.select(sa.func.min(trainings.c.trained_on).label("first_on"))
        .select_from(trainings.join(enterprises, _in_scope(scope)))
        .group_by(trainings.c.enterprise_id)
        .subquery()
    )
    return sa.select(first.c.first_on, sa.func.count()).group_by(first.c.first_on)


@functools.lru_cache(maxsize=256)
def _participants_by_day(scope: Scope) -> sa.Select[Any]:
    """How many managers and workers were trained on each day."""
    participants = sum(
        (trainings.c[column] for column in PARTICIPANTS[1:]), trainings.c[PARTICIPANTS[0]]
    )
    return (
        sa.select(trainings.c.trained_on, sa.func.sum(participants))
        .select_from(trainings.join(enterprises, _in_scope(scope)))
        .group_by(trainings.c.trained_on)
    )


def _month_of(day: dt.date) -> Month:
    return (day.year, day.month)


def _months(first: Month, last: Month) -> list[Month]:
    """Every month from `first` to `last`, both included."""
    out = []
    year, month = first
    while (year, month) <= last:
        out.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


async def monthly(conn: AsyncConnection, scope: Scope) -> list[MonthTrained]:
    """Every month from the scope's first training to its last, months without any included
    (a chart of them shows the quiet months as such); none before any training."""
    # By day in SQL, by month here: grouping by a month is written differently in SQLite and
    # PostgreSQL, and the days of a programme are a few thousand at most.
    enterprises_in: Counter[Month] = Counter()
    for day, count in await conn.execute(_first_trainings(scope)):
        enterprises_in[_month_of(_as_date(day))] += int(count)
    participants_in: Counter[Month] = Counter()
    for day, count in await conn.execute(_participants_by_day(scope)):
        participants_in[_month_of(_as_date(day))] += int(count or 0)
    known = set(enterprises_in) | set(participants_in)
    if not known:
        return []
    series = []
    enterprises_to_date = participants_to_date = 0
    for year, month in _months(min(known), max(known)):
        enterprises_to_date += enterprises_in[(year, month)]
        participants_to_date += participants_in[(year, month)]
        series.append(
            MonthTrained(
                month=f"{year:04}-{month:02}",
                enterprises_trained=enterprises_in[(year, month)],
                participants_trained=participants_in[(year, month)],
                enterprises_trained_to_date=enterprises_to_date,
                participants_trained_to_date=participants_to_date,
            )
        )
    return series


def _as_date(value: dt.date | str) -> dt.date:
    # SQLite hands back the date of an aggregate (min) as the text it stores.
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)
