"""HTTP API of the visits service: parse, call the command handler, answer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from score_chassis.api import (
    Body,
    Line,
    Paragraphs,
    PastDate,
    PlannedDate,
    RuntimeDep,
    Written,
    today,
)
from score_chassis.auth import Principal, Reader, require
from score_chassis.problems import BODY_ERRORS, RETRY_AFTER_SECONDS, NotFound, problem_responses
from score_chassis.runtime import Runtime
from score_chassis.writes import Write, changing, creating
from score_contracts.events import Improvement
from score_contracts.events.base import Id, ModuleNumber
from score_contracts.ids import uuid7
from score_visits import handlers
from score_visits.domain import CancelVisit, CompleteVisit, ScheduleVisit, Visit

router = APIRouter(prefix="/v1", tags=["visits"])

VisitWriter = Annotated[Principal, Depends(require("admin", "staff", "trainer"))]
"""Trainers schedule and record their visits; programme staff and operators may too."""

VisitId = Annotated[str, Path(description="The visit's id")]

NOT_KNOWN_YET: Final = f"""
**Not known yet** (problem type `/problems/not-known-yet`, with a `Retry-After: \
{RETRY_AFTER_SECONDS}` header). The visits service learns enterprises, enrolments and \
trainers from the enrolment service's events, which reach it a moment after they are recorded \
there (usually well under a second; longer while NATS is down or the views are being rebuilt). \
A visit for an enterprise enrolled a moment ago is either accepted or refused with one of \
these; retry after `Retry-After` seconds, a few times. If the refusal persists for more than a \
minute the fact is really missing: register, enrol or certify first. A missing fact is never \
proof that it does not exist in the enrolment service, so these are never given as final:

- `enterprise-not-known-yet`: the enterprise's registration has not arrived.
- `enrolment-not-known-yet`: no enrolment of the enterprise in the module has arrived.
- `trainer-not-known-yet`: nothing of the trainer has arrived.
- `certification-not-known-yet`: no certification of the trainer for the module has arrived.
- `views-rebuilding-not-known-yet`: the views are being rebuilt from the enrolment stream \
(`score replay visits-views`) and may lack a withdrawal; nothing is accepted on them until \
they have caught up.
"""


def _problems(*codes: int, conflict: str | None = None) -> dict[int | str, dict[str, Any]]:
    """The error responses an endpoint really gives; `conflict` describes its 409."""
    responses = problem_responses(*codes)
    if conflict is not None:
        responses[409] = {
            **responses[409],
            "description": conflict,
            "headers": {
                "Retry-After": {
                    "description": "Seconds to wait before retrying; only on "
                    "`/problems/not-known-yet`",
                    "schema": {"type": "integer"},
                }
            },
        }
    return responses


SCHEDULE_CONFLICTS = f"""A rule refused the visit; `rule` names it.

**Final** (problem type `/problems/refused`): retrying changes nothing.

- `enterprise-withdrawn`: the enterprise has withdrawn from the programme.
{NOT_KNOWN_YET}"""

COMPLETION_CONFLICTS = """A rule refused the completion; `rule` names it (all final but the
last).

- `no-completion-of-cancelled-visit`
- `visit-already-completed`
- `no-completion-before-scheduled-day`: `completed_on` is before the day the visit is scheduled \
for.
- `enterprise-withdrawn`: `completed_on` is after the enterprise withdrew.
- `concurrent-change`: the visit changed while the request was decided; retry.
- `views-rebuilding-not-known-yet` (problem type `/problems/not-known-yet`, with `Retry-After`): \
the views are being rebuilt and may lack the enterprise's withdrawal; retry shortly.
"""

CANCELLATION_CONFLICTS = """A rule refused the cancellation; `rule` names it (all final).

- `visit-already-cancelled`
- `no-cancellation-of-completed-visit`
- `concurrent-change`: the visit changed while the request was decided; retry.
"""


# Request bodies.


class ImprovementBody(Body):
    area: Line = Field(examples=["Almacén de telas"])
    description: Paragraphs = Field(examples=["5S: rollos clasificados por color y etiquetados"])


class ScheduleVisitBody(Body):
    enterprise_id: Id
    trainer_id: Id
    module: ModuleNumber = Field(description="The module (1–5) whose follow-up this visit is")
    scheduled_for: PlannedDate = Field(
        default_factory=today,
        description="Default: today; at most `SCORE_PLANNING_HORIZON_DAYS` ahead (366)",
    )


class CompletionBody(Body):
    completed_on: PastDate = Field(default_factory=today, description="Default: today")
    duration_hours: Annotated[Decimal, Field(gt=0, le=24, decimal_places=2)] = Field(
        examples=["3.5"]
    )
    improvements: list[ImprovementBody] = Field(
        default_factory=list,
        max_length=100,
        description="What was improved in the factory: 5S in a workspace, a visible notice "
        "board and suggestion box, a reorganised warehouse …",
    )


class CancellationBody(Body):
    reason: Line
    cancelled_on: PastDate = Field(default_factory=today, description="Default: today")


# Answers.

VisitStatus = Literal["scheduled", "completed", "cancelled"]


class VisitSummary(BaseModel):
    id: str
    version: int
    enterprise_id: str
    trainer_id: str
    module: int
    status: VisitStatus
    scheduled_for: dt.date
    completed_on: dt.date | None = None
    cancelled_on: dt.date | None = None
    improvements: int = Field(description="How many improvements were recorded")


class VisitList(BaseModel):
    enterprise_id: str
    visits: list[VisitSummary]


class VisitView(BaseModel):
    id: str
    version: int
    enterprise_id: str
    trainer_id: str
    module: int
    status: VisitStatus
    scheduled_for: dt.date
    completed_on: dt.date | None = None
    duration_hours: Decimal | None = None
    improvements: list[Improvement] = []
    cancelled_on: dt.date | None = None
    cancellation_reason: str | None = None

    @classmethod
    def of(cls, state: Visit, version: int) -> VisitView:
        assert state.status != "new" and state.scheduled_for is not None
        return cls(
            id=state.visit_id,
            version=version,
            enterprise_id=state.enterprise_id,
            trainer_id=state.trainer_id,
            module=state.module,
            status=state.status,
            scheduled_for=state.scheduled_for,
            completed_on=state.completed_on,
            duration_hours=state.duration_hours,
            improvements=list(state.improvements),
            cancelled_on=state.cancelled_on,
            cancellation_reason=state.cancellation_reason,
        )


# Endpoints.


def _own_visits_only(principal: Principal, trainer_id: str) -> None:
    if not principal.acts_for_trainer(trainer_id):
        raise HTTPException(403, detail="a trainer token acts for its own trainer's visits only")


async def _own_visit_only(principal: Principal, runtime: Runtime, visit_id: str) -> None:
    if principal.role == "trainer":
        state, _ = await handlers.load(runtime, visit_id)
        if state.status != "new":  # an unknown visit is the handler's 404
            _own_visits_only(principal, state.trainer_id)


WriteNew = Annotated[Write, Depends(creating(handlers.execute))]
WriteExisting = Annotated[Write, Depends(changing(handlers.execute))]


@router.post(
    "/visits",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
    response_model_exclude_none=True,
    summary="Schedule a visit to an enterprise for a module",
    description="Only for an enterprise enrolled in the module and not withdrawn, by a "
    "trainer certified for the module — as far as the visits service has heard from the "
    "enrolment service. See the 409 answer for what to do when it has not heard yet.",
    responses=_problems(*BODY_ERRORS, 401, 403, 409, 422, conflict=SCHEDULE_CONFLICTS),
)
async def schedule_visit(
    body: ScheduleVisitBody, write: WriteNew, principal: VisitWriter
) -> Written | JSONResponse:
    _own_visits_only(principal, body.trainer_id)
    command = ScheduleVisit(visit_id=uuid7(), **body.model_dump())
    return await write(command, id=command.visit_id)


@router.post(
    "/visits/{visit_id}/completion",
    response_model=Written,
    response_model_exclude_none=True,
    summary="Record that a visit took place, with the improvements found",
    responses=_problems(*BODY_ERRORS, 401, 403, 404, 409, 412, 422, conflict=COMPLETION_CONFLICTS),
)
async def complete_visit(
    visit_id: VisitId,
    body: CompletionBody,
    write: WriteExisting,
    principal: VisitWriter,
    runtime: RuntimeDep,
) -> Written | JSONResponse:
    await _own_visit_only(principal, runtime, visit_id)
    command = CompleteVisit(
        visit_id=visit_id,
        completed_on=body.completed_on,
        duration_hours=body.duration_hours,
        improvements=tuple(Improvement(**i.model_dump()) for i in body.improvements),
    )
    return await write(command, id=visit_id)


@router.post(
    "/visits/{visit_id}/cancellation",
    response_model=Written,
    response_model_exclude_none=True,
    summary="Cancel a visit, with the reason",
    responses=_problems(
        *BODY_ERRORS, 401, 403, 404, 409, 412, 422, conflict=CANCELLATION_CONFLICTS
    ),
)
async def cancel_visit(
    visit_id: VisitId,
    body: CancellationBody,
    write: WriteExisting,
    principal: VisitWriter,
    runtime: RuntimeDep,
) -> Written | JSONResponse:
    await _own_visit_only(principal, runtime, visit_id)
    command = CancelVisit(visit_id=visit_id, **body.model_dump())
    return await write(command, id=visit_id)


@router.get(
    "/visits/{visit_id}",
    summary="A visit",
    description="The `ETag` header carries the visit's version, for `If-Match` on a write.",
    responses=_problems(401, 404),
)
async def get_visit(
    visit_id: VisitId, runtime: RuntimeDep, principal: Reader, response: Response
) -> VisitView:
    state, version = await handlers.load(runtime, visit_id)
    # A chamber sees only the visits of its regions: the others do not exist for it.
    if state.status == "new" or not principal.sees_region(
        await handlers.region_of(runtime, visit_id)
    ):
        raise NotFound("visit", visit_id)
    response.headers["ETag"] = f'"{version}"'
    return VisitView.of(state, version)


@router.get(
    "/visits",
    summary="An enterprise's visits, with where each stands",
    description="Oldest scheduled first. A chamber sees only the visits in its regions.",
    responses=_problems(401, 422),
)
async def list_visits(
    runtime: RuntimeDep,
    principal: Reader,
    enterprise_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> VisitList:
    regions = principal.regions if principal.role == "chamber" else None
    rows = await handlers.visits_of(runtime, enterprise_id, regions=regions)
    return VisitList(
        enterprise_id=enterprise_id,
        visits=[
            VisitSummary(
                id=row.visit_id,
                version=row.version,
                enterprise_id=row.enterprise_id,
                trainer_id=row.trainer_id,
                module=row.module,
                status=row.status,
                scheduled_for=row.scheduled_for,
                completed_on=row.completed_on,
                cancelled_on=row.cancelled_on,
                improvements=row.improvements,
            )
            for row in rows
        ],
    )
