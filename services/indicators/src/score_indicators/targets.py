"""A phase's targets against what the projection holds, as DOMAIN.md defines them.

Five targets are indicators counted within the phase's window. The other two ask when a
region, or a chamber, had its *first trained enterprise ever*: each region and each chamber
has one such day, and the target counts those that fall within the window. A chamber is
counted in the region of its first trained enterprise (the earliest training, then the
smallest enterprise id), so that the regions' figures add up to the national one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from score_indicators.indicators import Scope, compute
from score_indicators.programme import TARGETS, Phase
from score_indicators.tables import enterprises, trainings


@dataclass(frozen=True, slots=True)
class TargetValue:
    """One target of a phase: what it asks, what is there, how far along, whether it is met."""

    key: str
    target: float
    actual: float | None
    """None where the indicator has nothing to divide by (cost recovery with no costs)."""
    percent: float | None
    """100 × actual / target, one decimal; it may exceed 100."""
    met: bool


async def targets_of(
    conn: AsyncConnection, phase: Phase, *, region: str | None = None
) -> list[TargetValue]:
    """The targets of `phase`, nationally or in `region`, in DOMAIN.md's order."""
    scope = Scope(country=phase.country, region=region, window=phase.window)
    values: dict[str, Any] = dict(await compute(conn, scope))
    firsts = await first_trained(conn, phase.country, region)
    values["new_regions"] = sum(1 for day in firsts.regions.values() if _within(day, phase))
    values["new_chambers"] = sum(1 for day in firsts.chambers.values() if _within(day, phase))
    return [
        _against(key, phase.targets[key], values[key]) for key in TARGETS if key in phase.targets
    ]


@dataclass(frozen=True, slots=True)
class FirstTrained:
    """The day of each region's, and each chamber's, first trained enterprise ever."""

    regions: dict[str, dt.date]
    chambers: dict[str, dt.date]


async def first_trained(conn: AsyncConnection, country: str, region: str | None) -> FirstTrained:
    """Each region's and each chamber's first trained enterprise's day, in `country` (the
    chambers whose first one is in `region`, where given)."""
    # Each trained enterprise's first training: one row per enterprise.
    first = (
        sa.select(
            enterprises.c.enterprise_id,
            enterprises.c.region,
            enterprises.c.chamber_key,
            sa.func.min(trainings.c.trained_on).label("first_on"),
        )
        .select_from(
            trainings.join(enterprises, enterprises.c.enterprise_id == trainings.c.enterprise_id)
        )
        .where(enterprises.c.country == country, enterprises.c.region.is_not(None))
        .group_by(enterprises.c.enterprise_id, enterprises.c.region, enterprises.c.chamber_key)
        .subquery()
    )
    by_region = sa.select(first.c.region, sa.func.min(first.c.first_on)).group_by(first.c.region)
    if region is not None:
        by_region = by_region.where(first.c.region == region)
    rank = (
        sa.func.row_number()
        .over(
            partition_by=first.c.chamber_key,
            order_by=(first.c.first_on, first.c.enterprise_id),
        )
        .label("rank")
    )
    ranked = (
        sa.select(first.c.chamber_key, first.c.region, first.c.first_on, rank)
        .where(first.c.chamber_key.is_not(None))
        .subquery()
    )
    by_chamber = sa.select(ranked.c.chamber_key, ranked.c.first_on).where(ranked.c.rank == 1)
    if region is not None:
        by_chamber = by_chamber.where(ranked.c.region == region)
    regions = {str(r): _date(day) for r, day in await conn.execute(by_region)}
    chambers = {str(c): _date(day) for c, day in await conn.execute(by_chamber)}
    return FirstTrained(regions=regions, chambers=chambers)


def _date(value: Any) -> dt.date:
    # SQLite gives a MIN() of dates back as text.
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _within(day: dt.date, phase: Phase) -> bool:
    return phase.starts_on <= day <= phase.ends_on


def _against(key: str, target: Decimal, actual: float | int | None) -> TargetValue:
    if actual is None:
        return TargetValue(key=key, target=float(target), actual=None, percent=None, met=False)
    share = (Decimal(100) * Decimal(str(actual)) / target).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    return TargetValue(
        key=key,
        target=float(target),
        actual=float(actual) if isinstance(actual, float) else actual,
        percent=float(share),
        met=Decimal(str(actual)) >= target,
    )
