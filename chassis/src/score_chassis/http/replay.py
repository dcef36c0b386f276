"""Rebuilding a service's view from the streams that feed it, for operators: the endpoints
`score replay` calls. The service does the work, since it owns the view and its consumers; the
work is the runtime's, in the background (`rebuild.py`), so the request answers at once."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import BaseModel, Field

from score_chassis.http.auth import require
from score_chassis.http.inputs import RuntimeDep
from score_chassis.http.problems import PROBLEM_JSON, Problem, problem_responses
from score_chassis.rebuild import Report
from score_chassis.tokens import Principal
from score_chassis.view import View

Admin = Annotated[Principal, Depends(require("admin"))]


class ReplayLinks(BaseModel):
    progress: str = Field(description="Where to follow the rebuild, with `GET`")


class ReplayProgress(BaseModel):
    """Where the rebuild of a view stands, and how far the view is built from its streams."""

    view: str
    state: Literal["rebuilding", "failed", "built"] = Field(
        description="`rebuilding` from the request until every consumer has caught up with what "
        "its stream held when the rebuild started (meanwhile the view's reads answer 503, "
        "unless it is rebuilt `beside` the one served); "
        "`failed` when the last rebuild could not start, which left the view as it was "
        "(`error` says why; ask again); `built` otherwise"
    )
    consumers: list[str] = Field(description="The durable consumers that build the view")
    streams: list[str]
    processed: int | None = Field(
        description="Events applied to the view, counted by stream sequence over its streams; "
        "during a rebuild, up to `target`. Null when NATS could not be asked"
    )
    target: int | None = Field(
        description="During a rebuild, the streams' last sequences when it started, added up: "
        "it is over when `processed` reaches this"
    )
    last_sequence: int | None = Field(
        description="The streams' last sequences now, added up (null when NATS could not be asked)"
    )
    pending: int | None = Field(
        description="Events not yet applied (null when NATS could not be asked)"
    )
    done: bool = Field(
        description="No rebuild under way and nothing pending: the view holds every event of its "
        "streams"
    )
    started_at: dt.datetime | None = Field(description="When the running or last rebuild began")
    error: str | None = Field(
        description="What went wrong: why the rebuild failed, or, while it runs, what it is "
        "waiting for (NATS, most often); it carries on by itself when that is back"
    )
    beside: bool = Field(
        description="Whether the view is rebuilt beside the one served, which goes on "
        "answering until the new one, caught up, replaces it in one transaction (otherwise it "
        "is cleared and refilled)"
    )
    links: ReplayLinks

    @classmethod
    def of(cls, report: Report, path: str) -> ReplayProgress:
        return cls(
            view=report.view.name,
            state=report.state,
            consumers=list(report.consumers),
            streams=list(report.streams),
            processed=report.processed,
            target=report.target,
            last_sequence=report.last_sequence,
            pending=report.pending,
            done=report.state == "built" and report.pending == 0,
            started_at=report.started_at,
            error=report.error,
            beside=report.beside,
            links=ReplayLinks(progress=path),
        )


def replay_router(view: View, *, description: str) -> APIRouter:
    """`POST` and `GET /v1/ops/replay/<view>`: rebuild `view` and follow the rebuild."""
    router = APIRouter(prefix="/v1/ops", tags=["operations"])
    path = f"/v1/ops/replay/{view.name}"

    @router.post(
        f"/replay/{view.name}",
        status_code=status.HTTP_202_ACCEPTED,
        summary=f"Rebuild {view.title} from its streams",
        description=f"{description} Answers `202` at once, with a `Location` to follow the "
        "rebuild at (`GET`), and does the work in the background: clears the view and its "
        "consumers' record of what they handled in one transaction, then consumes the streams "
        "again from their first event; or, for a view built beside the one served, consumes "
        "them into tables of its own and replaces the view with them in one transaction when "
        "they have caught up. Asking while a rebuild is under way (started here, by "
        "another replica, or before a restart) answers that one: a second never starts "
        "alongside it.",
        responses={
            202: {
                "description": "The rebuild is under way",
                "headers": {
                    "Location": {
                        "description": "Where to follow it",
                        "schema": {"type": "string"},
                    }
                },
            },
            **problem_responses(401, 403),
            503: {
                "model": Problem,
                "description": "NATS is not reachable: nothing was started or cleared",
                "content": {PROBLEM_JSON: {}},
            },
        },
    )
    async def start_replay(runtime: RuntimeDep, _: Admin, response: Response) -> ReplayProgress:
        if not runtime.nats.connected:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                detail="NATS is not reachable: a view is rebuilt from its streams. Try again "
                "when it is back",
            )
        await runtime.rebuilds.ask(view)
        response.headers["Location"] = path
        return ReplayProgress.of(await runtime.rebuilds.report(view, ask_nats=False), path)

    @router.get(
        f"/replay/{view.name}",
        summary=f"How far {view.title} is built from its streams",
        responses=problem_responses(401, 403),
    )
    async def replay_progress(runtime: RuntimeDep, _: Admin) -> ReplayProgress:
        return ReplayProgress.of(await runtime.rebuilds.report(view), path)

    return router
