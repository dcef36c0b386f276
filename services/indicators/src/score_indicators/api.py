"""HTTP API of the indicators service."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from score_chassis.http.auth import Reader
from score_chassis.http.inputs import KnownCountry, RegionSlug, RuntimeDep, queried_region, today
from score_chassis.http.problems import invalid_input, problem_responses, rebuilding_response
from score_chassis.view import Kept, aware, reading
from score_contracts.reference import DEFAULT_COUNTRY, quoted
from score_indicators import milestones
from score_indicators.indicators import Scope, Value, compute
from score_indicators.programme import Phase, Programme
from score_indicators.projection import PROJECTION
from score_indicators.targets import TargetValue, targets_of

router = APIRouter(prefix="/v1", tags=["indicators"])


class IndicatorsView(BaseModel):
    country: str
    region: str | None
    phase: str | None
    as_of: dt.datetime = Field(description="When the figures were computed")
    indicators: dict[str, Value] = Field(
        description="Every indicator of the programme; null where its denominator is zero"
    )


@router.get(
    "/indicators",
    summary="The programme's indicators for a scope",
    responses={**problem_responses(401, 403, 422), **rebuilding_response(PROJECTION.title)},
)
async def get_indicators(
    request: Request,
    runtime: RuntimeDep,
    principal: Reader,
    country: Annotated[KnownCountry, Query()] = DEFAULT_COUNTRY,
    region: Annotated[RegionSlug | None, Query(description="A region slug, e.g. la_paz")] = None,
    phase: Annotated[
        str | None, Query(max_length=64, description="A phase id, e.g. phase-3")
    ] = None,
) -> IndicatorsView:
    if not principal.sees_region(region):
        raise HTTPException(403, detail="a chamber reads the indicators of its own regions only")
    programme: Programme = request.app.state.programme
    if region is not None:
        queried_region(country, region)
    window = None
    if phase is not None:
        found = programme.phase(phase)
        if found is None:
            known = ", ".join(p.id for p in programme.phases)
            reason = f"unknown phase {quoted(phase)}; one of: {known}"
            raise invalid_input("query", "phase", reason, rule="unknown-phase")
        window = found.window
    scope = Scope(country=country, region=region, window=window)
    kept: Kept[Scope, dict[str, Value]] = request.app.state.figures
    async with reading(runtime.database, PROJECTION) as conn:
        indicators = await kept.get(conn, scope, lambda: compute(conn, scope))
    return IndicatorsView(
        country=country,
        region=region,
        phase=phase,
        as_of=dt.datetime.now(dt.UTC),
        indicators=indicators,
    )


class Target(BaseModel):
    key: str = Field(description="A target key of DOMAIN.md, e.g. enterprises_trained_direct")
    target: float
    actual: float | None = Field(description="Within the phase's window; null where undefined")
    percent: float | None = Field(description="100 × actual / target, one decimal (may pass 100)")
    met: bool


class TargetsView(BaseModel):
    phase: str
    title: str
    starts_on: dt.date
    ends_on: dt.date
    region: str | None
    as_of: dt.datetime = Field(description="When the figures were computed")
    targets: list[Target]


@router.get(
    "/targets",
    summary="A phase's targets, and how far the programme is towards each",
    responses={**problem_responses(401, 403, 422), **rebuilding_response(PROJECTION.title)},
)
async def get_targets(
    request: Request,
    runtime: RuntimeDep,
    principal: Reader,
    phase: Annotated[
        str | None,
        Query(max_length=64, description="A phase id, e.g. phase-3; the current phase if none"),
    ] = None,
    region: Annotated[RegionSlug | None, Query(description="A region slug, e.g. la_paz")] = None,
) -> TargetsView:
    if not principal.sees_region(region):
        raise HTTPException(403, detail="a chamber reads the targets of its own regions only")
    programme: Programme = request.app.state.programme
    chosen = _phase(programme, phase, today())
    if region is not None:
        queried_region(chosen.country, region)
    kept: Kept[tuple[str, str | None], list[TargetValue]] = request.app.state.targets
    async with reading(runtime.database, PROJECTION) as conn:
        values = await kept.get(
            conn, (chosen.id, region), lambda: targets_of(conn, programme, chosen, region=region)
        )
    return TargetsView(
        phase=chosen.id,
        title=chosen.title,
        starts_on=chosen.starts_on,
        ends_on=chosen.ends_on,
        region=region,
        as_of=dt.datetime.now(dt.UTC),
        targets=[Target(**dataclasses.asdict(value)) for value in values],
    )


def _phase(programme: Programme, phase: str | None, today: dt.date) -> Phase:
    chosen = programme.current_phase(today) if phase is None else programme.phase(phase)
    if chosen is None:
        known = ", ".join(p.id for p in programme.phases) or "none is configured"
        reason = f"unknown phase {quoted(phase or '')}; one of: {known}"
        raise invalid_input("query", "phase", reason, rule="unknown-phase")
    return chosen


class MilestoneView(BaseModel):
    milestone_id: str
    milestone: str = Field(description="The milestone's id in the programme's configuration")
    title: str
    indicator: str
    scope: str = Field(description="`national` or a region's slug")
    threshold: Decimal
    value: Decimal = Field(description="The indicator's value when the threshold was found")
    phase: str | None
    reached_at: dt.datetime


class MilestonesView(BaseModel):
    milestones: list[MilestoneView] = Field(description="Newest first")


@router.get(
    "/milestones",
    summary="The milestones reached, newest first",
    responses=problem_responses(401, 403, 422),
)
async def get_milestones(
    request: Request,
    runtime: RuntimeDep,
    principal: Reader,
    region: Annotated[RegionSlug | None, Query(description="Only this region's")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    lang: Annotated[Literal["es", "en"], Query(description="The titles' language")] = "es",
) -> MilestonesView:
    if region is not None and not principal.sees_region(region):
        raise HTTPException(403, detail="a chamber reads the milestones of its own regions only")
    if region is not None:
        queried_region(runtime.settings.country, region)
        scopes: tuple[str, ...] | None = (region,)
    elif principal.role == "chamber":
        scopes = principal.regions
    else:
        scopes = None
    programme: Programme = request.app.state.programme
    titles = {
        m.id: (m.title_en or m.title) if lang == "en" else m.title for m in programme.milestones
    }
    async with runtime.database.transaction(write=False) as conn:
        rows = await milestones.listed(conn, scopes=scopes, limit=limit)
    return MilestonesView(
        milestones=[
            MilestoneView(
                milestone_id=row.milestone_id,
                milestone=row.milestone,
                title=titles.get(row.milestone, row.milestone),
                indicator=row.indicator,
                scope=row.scope,
                threshold=Decimal(row.threshold).normalize(),
                value=Decimal(row.value).normalize(),
                phase=row.phase,
                reached_at=aware(row.reached_at),
            )
            for row in rows
        ]
    )
