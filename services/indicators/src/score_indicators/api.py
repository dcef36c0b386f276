"""HTTP API of the indicators service."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated, Literal, get_args

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, Field

from score_chassis.http.auth import Reader
from score_chassis.http.inputs import (
    KnownCountry,
    RegionSlug,
    RuntimeDep,
    queried_region,
    refusal,
    today,
)
from score_chassis.http.problems import invalid_input, problem_responses, rebuilding_response
from score_chassis.runtime import Runtime
from score_chassis.tokens import Principal
from score_chassis.view import Kept, reading
from score_contracts.reference import DEFAULT_COUNTRY, NATIONAL, REGIONS, quoted
from score_indicators.export import (
    MEDIA_TYPES,
    FileFormat,
    attachment,
    indicators_table,
    to_csv,
    to_xlsx,
)
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


AnswerFormat = Literal["json", "csv", "xlsx"]
FORMATS: tuple[str, ...] = get_args(AnswerFormat)


def _known_format(value: object) -> object:
    if value not in FORMATS:
        reason = f"unknown format {quoted(str(value))}; one of: {', '.join(FORMATS)}"
        raise refusal("unknown-format", reason)
    return value


Format = Annotated[AnswerFormat, BeforeValidator(_known_format)]
"""How the indicators are answered: JSON for one scope, or a CSV or Excel file of every scope
(the rule named on a bad one is `unknown-format`)."""

NOT_YOURS = "a chamber reads the indicators of its own regions only"


@router.get(
    "/indicators",
    summary="The programme's indicators for a scope, or every scope as a file",
    description="With `format=csv` or `format=xlsx`, a file to download: a row per scope "
    "(`national`, then each region of the country; a chamber's own regions only) and a "
    "column per indicator, within the phase's window if `phase` is given, all counted from "
    "one moment of the projection. `region` narrows the file to that region's row.",
    response_model=IndicatorsView,
    responses={
        200: {
            "description": "The indicators (JSON), or a file of every scope (CSV, Excel)",
            "content": {
                media_type.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
                for media_type in MEDIA_TYPES.values()
            },
            "headers": {
                "Content-Disposition": {
                    "description": 'With a file: `attachment; filename="score-indicators-'
                    '<country>-<phase or all>-<YYYY-MM-DD>.<csv|xlsx>"`, the date being '
                    "today in the programme's time zone",
                    "schema": {"type": "string"},
                }
            },
        },
        **problem_responses(401, 403, 422),
        **rebuilding_response(PROJECTION.title),
    },
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
    format_: Annotated[
        Format,
        Query(
            alias="format",
            description="`json` (one scope), or `csv` or `xlsx`: a file of every scope",
        ),
    ] = "json",
) -> IndicatorsView | Response:
    if format_ != "json":
        return await _export(request, runtime, principal, country, region, phase, format_)
    if not principal.sees_region(region):
        raise HTTPException(403, detail=NOT_YOURS)
    programme: Programme = request.app.state.programme
    if region is not None:
        queried_region(country, region)
    window = _window(programme, phase)
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


def _window(programme: Programme, phase: str | None) -> tuple[dt.date, dt.date] | None:
    """The date window of `phase` (None for since inception); a 422 naming the query
    parameter if the programme has no such phase."""
    if phase is None:
        return None
    found = programme.phase(phase)
    if found is None:
        known = ", ".join(p.id for p in programme.phases)
        reason = f"unknown phase {quoted(phase)}; one of: {known}"
        raise invalid_input("query", "phase", reason, rule="unknown-phase")
    return found.window


async def _export(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    country: str,
    region: str | None,
    phase: str | None,
    file_format: FileFormat,
) -> Response:
    """The indicators of every scope the principal sees, as a file.

    Every scope is counted in one read transaction: the rows are of one moment of the
    projection, so the regions add up to the national row however fast events arrive.
    """
    if region is not None and not principal.sees_region(region):
        raise HTTPException(403, detail=NOT_YOURS)
    programme: Programme = request.app.state.programme
    if region is not None:
        queried_region(country, region)
    window = _window(programme, phase)
    regions = [region] if region is not None else [None, *REGIONS[country]]
    visible = [r for r in regions if principal.sees_region(r)]
    if not visible:  # a chamber of none of this country's regions
        raise HTTPException(403, detail=NOT_YOURS)
    kept: Kept[Scope, dict[str, Value]] = request.app.state.figures
    figures = []
    async with reading(runtime.database, PROJECTION) as conn:
        for each in visible:
            scope = Scope(country=country, region=each, window=window)
            values = await kept.get(conn, scope, partial(compute, conn, scope))
            figures.append((each or NATIONAL, values))
    table = indicators_table(figures)
    content = to_csv(table) if file_format == "csv" else to_xlsx([table])
    name = f"score-indicators-{country}-{phase or 'all'}-{today().isoformat()}.{file_format}"
    return Response(
        content,
        media_type=MEDIA_TYPES[file_format],
        headers={"Content-Disposition": attachment(name)},
    )
