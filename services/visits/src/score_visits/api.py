"""HTTP API of the visits service: parse, pass the command to the chassis, answer."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from score_chassis.errors import NotFound
from score_chassis.http.auth import Reader, require
from score_chassis.http.inputs import RuntimeDep, Written, path_id
from score_chassis.http.problems import RETRY_AFTER_SECONDS, problem_responses
from score_chassis.http.writes import ExistingWrite, NewWrite, write_route
from score_chassis.runtime import Runtime
from score_chassis.store import load
from score_chassis.tokens import Principal
from score_contracts.events import Improvement
from score_contracts.ids import uuid7
from score_visits import handlers, visit_list
from score_visits.bodies import (
    CancellationBody,
    CompletionBody,
    ScheduleVisitBody,
    VisitList,
    VisitSummary,
    VisitView,
)
from score_visits.domain import CancelVisit, CompleteVisit, ScheduleVisit, Visit, visit

router = APIRouter(prefix="/v1", tags=["visits"])

VisitWriter = Annotated[Principal, Depends(require("admin", "staff", "trainer"))]
"""Trainers schedule and record their visits; programme staff and operators may too."""

VisitId = Annotated[str, path_id("The visit's id")]

NOT_KNOWN_YET: Final = f"""
**Not known yet** (problem type `…/problems/not-known-yet`, with a `Retry-After: \
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


def _conflict(description: str) -> dict[str, Any]:
    """A 409's entry: the rules it names, and the Retry-After of those not known yet."""
    return {
        "description": description,
        "headers": {
            "Retry-After": {
                "description": "Seconds to wait before retrying; only on "
                "`…/problems/not-known-yet`",
                "schema": {"type": "integer"},
            }
        },
    }


SCHEDULE_CONFLICTS = f"""A rule refused the visit; `rule` names it.

**Final** (problem type `…/problems/refused`): retrying changes nothing.

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
- `views-rebuilding-not-known-yet` (problem type `…/problems/not-known-yet`, with `Retry-After`): \
the views are being rebuilt and may lack the enterprise's withdrawal; retry shortly.
"""

CANCELLATION_CONFLICTS = """A rule refused the cancellation; `rule` names it (all final).

- `visit-already-cancelled`
- `no-cancellation-of-completed-visit`
- `concurrent-change`: the visit changed while the request was decided; retry.
"""


# Endpoints.


def _own_visits_only(principal: Principal, trainer_id: str) -> None:
    if not principal.acts_for_trainer(trainer_id):
        raise HTTPException(403, detail="a trainer token acts for its own trainer's visits only")


async def _own_visit_only(principal: Principal, runtime: Runtime, visit_id: str) -> None:
    if principal.role == "trainer":
        state, _ = await _load(runtime, visit_id)
        if state.status != "new":  # an unknown visit is the chassis's 404
            _own_visits_only(principal, state.trainer_id)


async def _load(runtime: Runtime, visit_id: str) -> tuple[Visit, int]:
    async with runtime.database.transaction(write=False) as conn:
        history = await load(conn, handlers.stream_of(visit_id))
    return visit.fold(e.payload() for e in history), len(history)


@router.post(
    "/visits",
    **write_route(
        201, 401, 403, 409, 422, answer=Written, described={409: _conflict(SCHEDULE_CONFLICTS)}
    ),
    summary="Schedule a visit to an enterprise for a module",
    description="Only for an enterprise enrolled in the module and not withdrawn, by a "
    "trainer certified for the module — as far as the visits service has heard from the "
    "enrolment service. See the 409 answer for what to do when it has not heard yet.",
)
async def schedule_visit(
    body: ScheduleVisitBody, write: NewWrite, principal: VisitWriter
) -> BaseModel | JSONResponse:
    _own_visits_only(principal, body.trainer_id)
    return await write(ScheduleVisit(visit_id=uuid7(), **body.model_dump()))


@router.post(
    "/visits/{visit_id}/completion",
    **write_route(
        200,
        401,
        403,
        404,
        409,
        412,
        422,
        answer=Written,
        described={409: _conflict(COMPLETION_CONFLICTS)},
    ),
    summary="Record that a visit took place, with the improvements found",
)
async def complete_visit(
    visit_id: VisitId,
    body: CompletionBody,
    write: ExistingWrite,
    principal: VisitWriter,
    runtime: RuntimeDep,
) -> BaseModel | JSONResponse:
    await _own_visit_only(principal, runtime, visit_id)
    command = CompleteVisit(
        visit_id=visit_id,
        completed_on=body.completed_on,
        duration_hours=body.duration_hours,
        improvements=tuple(Improvement(**i.model_dump()) for i in body.improvements),
    )
    return await write(command)


@router.post(
    "/visits/{visit_id}/cancellation",
    **write_route(
        200,
        401,
        403,
        404,
        409,
        412,
        422,
        answer=Written,
        described={409: _conflict(CANCELLATION_CONFLICTS)},
    ),
    summary="Cancel a visit, with the reason",
)
async def cancel_visit(
    visit_id: VisitId,
    body: CancellationBody,
    write: ExistingWrite,
    principal: VisitWriter,
    runtime: RuntimeDep,
) -> BaseModel | JSONResponse:
    await _own_visit_only(principal, runtime, visit_id)
    return await write(CancelVisit(visit_id=visit_id, **body.model_dump()))


@router.get(
    "/visits/{visit_id}",
    summary="A visit",
    description="The `ETag` header carries the visit's version, for `If-Match` on a write.",
    responses=problem_responses(401, 404, 422),
)
async def get_visit(
    visit_id: VisitId, runtime: RuntimeDep, principal: Reader, response: Response
) -> VisitView:
    state, version = await _load(runtime, visit_id)
    async with runtime.database.transaction(write=False) as conn:
        listed = await visit_list.visit_row(conn, visit_id)
    # A chamber sees only the visits of its regions: the others do not exist for it.
    if state.status == "new" or listed is None or not principal.sees_region(listed.region):
        raise NotFound("visit", visit_id)
    response.headers["ETag"] = f'"{version}"'
    return VisitView.of(state, version)


@router.get(
    "/visits",
    summary="An enterprise's visits, with where each stands",
    description="Oldest scheduled first. A chamber sees only the visits in its regions.",
    responses=problem_responses(401, 422),
)
async def list_visits(
    runtime: RuntimeDep,
    principal: Reader,
    enterprise_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> VisitList:
    regions = principal.regions if principal.role == "chamber" else None
    async with runtime.database.transaction(write=False) as conn:
        rows = await visit_list.visits_of(conn, enterprise_id, regions=regions)
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
