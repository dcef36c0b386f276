"""HTTP API of the indicators service."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, HTTPException, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, Field
from sqlalchemy.ext.asyncio import AsyncConnection

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
from score_chassis.view import Kept, aware, reading
from score_contracts.reference import DEFAULT_COUNTRY, NATIONAL, REGIONS, quoted
from score_indicators import milestones
from score_indicators.export import (
    MEDIA_TYPES,
    FileFormat,
    attachment,
    indicators_table,
    targets_table,
    to_csv,
    to_xlsx,
)
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

FormatQuery = Annotated[
    Format,
    Query(
        alias="format", description="`json` (one scope), or `csv` or `xlsx`: a file of every scope"
    ),
]

NOT_YOURS = "a chamber reads the indicators of its own regions only"


def _or_a_file(what: str, name: str) -> dict[int | str, dict[str, Any]]:
    """The 200 of an endpoint that answers JSON or, with `format`, a file, for its OpenAPI
    document."""
    return {
        200: {
            "description": f"{what} (JSON), or a file of every scope (CSV, Excel)",
            "content": {
                media_type.split(";")[0]: {"schema": {"type": "string", "format": "binary"}}
                for media_type in MEDIA_TYPES.values()
            },
            "headers": {
                "Content-Disposition": {
                    "description": f'With a file: `attachment; filename="{name}-<YYYY-MM-DD>'
                    ".<csv|xlsx>\"`, the date being today in the programme's time zone",
                    "schema": {"type": "string"},
                }
            },
        }
    }


@router.get(
    "/indicators",
    summary="The programme's indicators for a scope, or every scope as a file",
    description="With `format=csv` or `format=xlsx`, a file to download: a row per scope "
    "(`national`, then each region of the country; a chamber's own regions only) and a "
    "column per indicator, within the phase's window if `phase` is given, all counted from "
    "one moment of the projection. `region` narrows the file to that region's row.",
    response_model=IndicatorsView,
    responses={
        **_or_a_file("The indicators", "score-indicators-<country>-<phase or all>"),
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
    format_: FormatQuery = "json",
) -> IndicatorsView | Response:
    if format_ != "json":
        return await _export(request, runtime, principal, country, region, phase, format_)
    scope = scope_asked(request.app.state.programme, principal, country, region, phase)
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


def scope_asked(
    programme: Programme,
    principal: Principal,
    country: str,
    region: str | None,
    phase: str | None,
) -> Scope:
    """The scope a query of the indicators names: a chamber reads its own regions only (403),
    and an unknown region or phase is a 422 naming the parameter."""
    if not principal.sees_region(region):
        raise HTTPException(403, detail=NOT_YOURS)
    if region is not None:
        queried_region(country, region)
    return Scope(country=country, region=region, window=_window(programme, phase))


def _window(programme: Programme, phase: str | None) -> tuple[dt.date, dt.date] | None:
    """The date window of `phase` (None for since inception); a 422 naming the query
    parameter if the programme has no such phase."""
    return None if phase is None else _phase(programme, phase, today()).window


def _scopes_seen(
    principal: Principal, country: str, region: str | None, not_yours: str
) -> list[str | None]:
    """The scopes a file holds: `region` alone if named, else the nation (None) and each of
    the country's regions; of those, the ones the principal may read (a chamber's own
    regions). A 403 if that leaves none."""
    scopes = [region] if region is not None else [None, *REGIONS[country]]
    seen = [scope for scope in scopes if principal.sees_region(scope)]
    if not seen:
        raise HTTPException(403, detail=not_yours)
    return seen


async def _export(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    country: str,
    region: str | None,
    phase: str | None,
    file_format: FileFormat,
) -> Response:
    """The indicators of every scope the principal sees, as a file; a workbook has the
    targets of the phase (the current one if none is named) on a second sheet.

    Every scope is counted in one read transaction: the rows are of one moment of the
    projection, so the regions add up to the national row however fast events arrive.
    """
    if region is not None and not principal.sees_region(region):
        raise HTTPException(403, detail=NOT_YOURS)
    programme: Programme = request.app.state.programme
    if region is not None:
        queried_region(country, region)
    chosen = None if phase is None else _phase(programme, phase, today())
    window = None if chosen is None else chosen.window
    of_targets = chosen or programme.current_phase(today())
    scopes = _scopes_seen(principal, country, region, NOT_YOURS)
    kept: Kept[Scope, dict[str, Value]] = request.app.state.figures
    figures, targets = [], []
    async with reading(runtime.database, PROJECTION) as conn:
        for each in scopes:
            scope = Scope(country=country, region=each, window=window)
            figures.append(
                (each or NATIONAL, await kept.get(conn, scope, partial(compute, conn, scope)))
            )
            if file_format == "xlsx" and of_targets is not None:
                targets.append((each or NATIONAL, await _targets(request, conn, of_targets, each)))
    table = indicators_table(figures)
    if file_format == "csv":
        content = to_csv(table)
    else:
        phase_id = "" if of_targets is None else of_targets.id
        content = to_xlsx([table, targets_table(phase_id, targets)])
    name = f"score-indicators-{country}-{phase or 'all'}-{today().isoformat()}.{file_format}"
    return _file(content, file_format, name)


def _file(content: bytes, file_format: FileFormat, name: str) -> Response:
    return Response(
        content,
        media_type=MEDIA_TYPES[file_format],
        headers={"Content-Disposition": attachment(name)},
    )


async def _targets(
    request: Request, conn: AsyncConnection, phase: Phase, region: str | None
) -> list[TargetValue]:
    """The targets of `phase` in a scope, kept while the projection is unchanged."""
    kept: Kept[tuple[str, str | None], list[TargetValue]] = request.app.state.targets
    return await kept.get(conn, (phase.id, region), partial(targets_of, conn, phase, region=region))


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
    description="With `format=csv` or `format=xlsx`, a file to download: a row per target "
    "of the phase in each scope (`national`, then each region of the phase's country; a "
    "chamber's own regions only), all counted from one moment of the projection. `region` "
    "narrows the file to that region's rows.",
    response_model=TargetsView,
    responses={
        **_or_a_file("The targets", "score-targets-<country>-<phase>"),
        **problem_responses(401, 403, 422),
        **rebuilding_response(PROJECTION.title),
    },
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
    format_: FormatQuery = "json",
) -> TargetsView | Response:
    if format_ != "json":
        return await _export_targets(request, runtime, principal, phase, region, format_)
    if not principal.sees_region(region):
        raise HTTPException(403, detail=NOT_YOUR_TARGETS)
    programme: Programme = request.app.state.programme
    chosen = _phase(programme, phase, today())
    if region is not None:
        queried_region(chosen.country, region)
    async with reading(runtime.database, PROJECTION) as conn:
        values = await _targets(request, conn, chosen, region)
    return TargetsView(
        phase=chosen.id,
        title=chosen.title,
        starts_on=chosen.starts_on,
        ends_on=chosen.ends_on,
        region=region,
        as_of=dt.datetime.now(dt.UTC),
        targets=[Target(**dataclasses.asdict(value)) for value in values],
    )


NOT_YOUR_TARGETS = "a chamber reads the targets of its own regions only"


async def _export_targets(
    request: Request,
    runtime: Runtime,
    principal: Principal,
    phase: str | None,
    region: str | None,
    file_format: FileFormat,
) -> Response:
    """The targets of the phase (the current one if none is named) in every scope the
    principal sees, as a file: a row per target of each scope, all of one moment."""
    if region is not None and not principal.sees_region(region):
        raise HTTPException(403, detail=NOT_YOUR_TARGETS)
    programme: Programme = request.app.state.programme
    chosen = _phase(programme, phase, today())
    if region is not None:
        queried_region(chosen.country, region)
    scopes = _scopes_seen(principal, chosen.country, region, NOT_YOUR_TARGETS)
    async with reading(runtime.database, PROJECTION) as conn:
        targets = [
            (each or NATIONAL, await _targets(request, conn, chosen, each)) for each in scopes
        ]
    table = targets_table(chosen.id, targets)
    content = to_csv(table) if file_format == "csv" else to_xlsx([table])
    name = f"score-targets-{chosen.country}-{chosen.id}-{today().isoformat()}.{file_format}"
    return _file(content, file_format, name)


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
                threshold=_plain(row.threshold),
                value=_plain(row.value),
                phase=row.phase,
                reached_at=aware(row.reached_at),
            )
            for row in rows
        ]
    )


def _plain(number: Decimal) -> Decimal:
    """A number as stored (to four places), without trailing zeros or an exponent: 60, 41.9."""
    trimmed = Decimal(number).normalize()
    return trimmed.quantize(Decimal(1)) if trimmed == trimmed.to_integral() else trimmed
