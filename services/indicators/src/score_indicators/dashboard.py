"""The dashboard: its page, and the endpoints only it needed — the programme's phases, the
months of training, and a stream that says when the figures have changed.

The page is plain HTML, CSS and JavaScript shipped in the package (`dashboard/`): no build
step, nothing fetched from elsewhere, so it works on a laptop with no internet. It needs no
token to load; its script asks the API with the token it is given, as any client would, and
the API decides what that token may read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

import sqlalchemy as sa
from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from score_chassis.http.auth import Reader
from score_chassis.http.inputs import KnownCountry, RegionSlug, RuntimeDep, today
from score_chassis.http.problems import problem_responses, rebuilding_response
from score_chassis.runtime import Runtime
from score_chassis.view import Kept, reading
from score_contracts.reference import DEFAULT_COUNTRY, quoted
from score_indicators.api import scope_asked
from score_indicators.changes import Changes
from score_indicators.indicators import Scope
from score_indicators.milestones import reached
from score_indicators.programme import Programme
from score_indicators.projection import PROJECTION
from score_indicators.series import MonthTrained, monthly

ASSETS = Path(__file__).with_name("dashboard")

ASSET_TYPES = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
"""The files the page loads, and nothing else of the folder."""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
"""The page's own files and API only: no inline script or style, nothing from elsewhere."""

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # The first address may hold the token (`/?token=`): never send it on as a referrer.
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}

router = APIRouter(tags=["dashboard"])


@cache
def _page(lang: str) -> str:
    html = (ASSETS / "index.html").read_text("utf-8")
    # The script translates what is on the page; the document's language is right from the
    # start, for screen readers and for the browser's own choices (hyphenation, quotes).
    return html.replace('<html lang="es">', f'<html lang="{lang}">', 1)


@router.get(
    "/",
    summary="The dashboard: totals, progress to targets, regions, months; live",
    response_class=HTMLResponse,
    responses={**problem_responses(422)},
)
async def dashboard_page(
    lang: Annotated[
        Literal["es", "en"], Query(description="The page's language: Spanish or English")
    ] = "es",
) -> HTMLResponse:
    # `no-store`: the address the page is first opened at may carry the token.
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-store"}
    return HTMLResponse(_page(lang), headers=headers)


@router.get("/dashboard/{asset}", include_in_schema=False)
async def dashboard_asset(asset: str) -> FileResponse:
    media_type = ASSET_TYPES.get(asset)
    if media_type is None:
        raise HTTPException(404, detail=f"no dashboard file {quoted(asset)}")
    return FileResponse(
        ASSETS / asset,
        media_type=media_type,
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )


class PhaseView(BaseModel):
    id: str
    title: str
    country: str
    starts_on: dt.date
    ends_on: dt.date
    targets: dict[str, float]
    current: bool = Field(description="Whether this is the current phase")


class PhasesView(BaseModel):
    current: str | None = Field(
        description="The phase whose window holds today, else the last one to have started; "
        "null if none has"
    )
    phases: list[PhaseView]


@router.get(
    "/v1/phases",
    tags=["indicators"],
    summary="The programme's phases, their windows and targets, and the current one",
    responses={**problem_responses(401, 403)},
)
async def get_phases(request: Request, principal: Reader) -> PhasesView:
    programme: Programme = request.app.state.programme
    current = programme.current_phase(today())  # as `GET /v1/targets` takes it by default
    return PhasesView(
        current=current.id if current else None,
        phases=[
            PhaseView(**phase.model_dump(), current=phase is current) for phase in programme.phases
        ],
    )


class MonthlyView(BaseModel):
    country: str
    region: str | None
    phase: str | None
    as_of: dt.datetime = Field(description="When the figures were computed")
    months: list[MonthTrained] = Field(
        description="Every month from the scope's first training to its last, quiet ones "
        "included: enterprises by the month of their first training, participants by the "
        "training's date; each with the totals to the month's end"
    )


@router.get(
    "/v1/indicators/monthly",
    tags=["indicators"],
    summary="Enterprises and participants trained, month by month, for a scope",
    responses={**problem_responses(401, 403, 422), **rebuilding_response(PROJECTION.title)},
)
async def get_monthly(
    request: Request,
    runtime: RuntimeDep,
    principal: Reader,
    country: Annotated[KnownCountry, Query()] = DEFAULT_COUNTRY,
    region: Annotated[RegionSlug | None, Query(description="A region slug, e.g. la_paz")] = None,
    phase: Annotated[
        str | None, Query(max_length=64, description="A phase id, e.g. phase-3")
    ] = None,
) -> MonthlyView:
    scope = scope_asked(request.app.state.programme, principal, country, region, phase)
    kept: Kept[Scope, list[MonthTrained]] = request.app.state.monthly
    async with reading(runtime.database, PROJECTION) as conn:
        months = await kept.get(conn, scope, lambda: monthly(conn, scope))
    return MonthlyView(
        country=country, region=region, phase=phase, as_of=dt.datetime.now(dt.UTC), months=months
    )


CHANGED_EVENT = {
    "description": "One event of the stream (its heartbeats are comments, not events)",
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"const": "changed"},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "type": "object",
                "required": ["version"],
                "properties": {
                    "version": {
                        "type": "integer",
                        "description": "Grows with each change of the figures",
                    }
                },
            },
        },
        "retry": {"type": "integer", "description": "Milliseconds to wait to reconnect"},
    },
}
"""How each server-sent event of the stream is documented (as OpenAPI 3.2 describes a stream
with `itemSchema`; before 3.2 the `schema` of `text/event-stream` is that of one event)."""


@router.get(
    "/v1/indicators/changes",
    tags=["indicators"],
    summary="A stream of server-sent events, one each time new events are counted",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": '`event: changed` with `{"version": N}` at once and at each '
            "change of the figures; a comment line as a heartbeat; the stream ends when the "
            "server stops (reconnect, as EventSource would)",
            "content": {"text/event-stream": {"schema": CHANGED_EVENT}},
        },
        **problem_responses(401, 403),
    },
)
async def get_changes(request: Request, principal: Reader) -> StreamingResponse:
    # Any reader may listen, a chamber too: a change says that something was counted, not
    # what or where; the figures themselves are read through the endpoints that check scope.
    changes: Changes = request.app.state.changes
    return StreamingResponse(
        changes.stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def milestones_recorded(conn: AsyncConnection) -> int:
    """How many milestones have been reached: a new one is news for the page too."""
    return int((await conn.execute(sa.select(sa.func.count()).select_from(reached))).scalar_one())


def attach(app: FastAPI) -> None:
    """Add the dashboard to the indicators' app: its routes, what they keep, and the end of
    the change streams before the runtime stops."""
    runtime: Runtime = app.state.runtime
    app.include_router(router)
    app.state.monthly = Kept[Scope, list[MonthTrained]](PROJECTION)
    changes = Changes(runtime.database, PROJECTION, also=milestones_recorded)
    app.state.changes = changes
    running = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with running(app):
            try:
                yield
            finally:
                await changes.close()

    app.router.lifespan_context = lifespan
