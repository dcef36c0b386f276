"""HTTP API of the indicators service."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from score_chassis.http.auth import Reader
from score_chassis.http.inputs import KnownCountry, RegionSlug, RuntimeDep, queried_region
from score_chassis.http.problems import invalid_input, problem_responses, rebuilding_response
from score_chassis.view import Kept, reading
from score_contracts.reference import DEFAULT_COUNTRY, quoted
from score_indicators.indicators import Scope, Value, compute
from score_indicators.programme import Programme
from score_indicators.projection import PROJECTION

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
