"""HTTP API of the enrolment service: parse, call the command handler, answer.

Programme staff (`staff`, `admin`) write; every role reads, a chamber only within its
regions. An enterprise or trainer outside a chamber's regions does not exist for it (404),
and asking for the list of a region outside them is forbidden (403), as for indicators.

A write that creates something addressable (an enterprise, an enrolment, a trainer) or adds
a record to one of an enterprise's collections answers 201; a correction or a withdrawal,
which change the enterprise itself, answer 200.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from score_chassis.errors import NotFound
from score_chassis.http.auth import Reader, Writer
from score_chassis.http.inputs import KnownCountry, RegionSlug, RuntimeDep, path_id, queried_region
from score_chassis.http.problems import problem_responses
from score_chassis.http.writes import ExistingWrite, NewWrite, write_route
from score_chassis.store import load
from score_contracts.events.base import Id as IdPattern
from score_contracts.ids import uuid7
from score_enrolment import enterprise_list, handlers
from score_enrolment.bodies import (
    CaseStudyBody,
    CertificationBody,
    CompletionBody,
    CorrectionBody,
    EnrolBody,
    EnterprisePage,
    EnterpriseSummary,
    EnterpriseView,
    PaymentBody,
    RegisterEnterpriseBody,
    RegisterTrainerBody,
    TrainerView,
    TrainingBody,
    WithdrawalBody,
    Written,
    history,
    sees_personal_data,
)
from score_enrolment.domain.enterprise import (
    CompleteModule,
    CorrectDetails,
    Enrol,
    PublishCaseStudy,
    RecordFeePayment,
    RecordTraining,
    RegisterEnterprise,
    Withdraw,
)
from score_enrolment.domain.trainer import CertifyTrainer, RegisterTrainer

router = APIRouter(prefix="/v1")

EnterpriseId = Annotated[str, path_id("The enterprise's id")]
TrainerId = Annotated[str, path_id("The trainer's id")]

_ETAG = {
    "ETag": {
        "description": 'The version read, e.g. `"3"`: send it back as If-Match to write at it',
        "schema": {"type": "string"},
    }
}
REGISTER_ENTERPRISE = write_route(201, 401, 403, 409, 422, answer=Written)
"""A new aggregate has no If-Match and no id to be unknown: no 404, no 412."""
REGISTER_TRAINER = write_route(201, 401, 403, 422, answer=Written)
"""No rule refuses a trainer's registration: no 409 either."""
ADD = write_route(201, 401, 403, 404, 409, 412, 422, answer=Written)
"""A write that adds to an existing aggregate (an enrolment, a training …)."""
CHANGE = write_route(200, 401, 403, 404, 409, 412, 422, answer=Written)
"""A write that changes an existing enterprise itself (its details, its withdrawal)."""


# Enterprises.


@router.post(
    "/enterprises", **REGISTER_ENTERPRISE, tags=["enterprises"], summary="Register an enterprise"
)
async def register_enterprise(
    _: Writer, body: RegisterEnterpriseBody, write: NewWrite
) -> BaseModel | JSONResponse:
    """Refused with `size-range-needs-reason` when the workforce is outside the targeted
    range and no `size_exception_reason` is given, and with `tax-id-registered-once` when
    an enterprise of the country is already registered with the tax id."""
    command = RegisterEnterprise(enterprise_id=uuid7(), **dict(body))
    return await write(command)


@router.patch(
    "/enterprises/{enterprise_id}",
    **CHANGE,
    tags=["enterprises"],
    summary="Correct an enterprise's details",
)
async def correct_details(
    _: Writer, enterprise_id: EnterpriseId, body: CorrectionBody, write: ExistingWrite
) -> BaseModel | JSONResponse:
    """Sets the workforce, sector, chamber or name that were recorded wrongly. Only the
    fields that differ are recorded; a correction that changes nothing leaves the version."""
    return await write(CorrectDetails(enterprise_id=enterprise_id, **dict(body)))


@router.get(
    "/enterprises/{enterprise_id}",
    tags=["enterprises"],
    summary="An enterprise: its current state and its history",
    responses={200: {"headers": _ETAG}, **problem_responses(401, 404, 422)},
)
async def get_enterprise(
    principal: Reader, enterprise_id: EnterpriseId, runtime: RuntimeDep, response: Response
) -> EnterpriseView:
    async with runtime.database.transaction(write=False) as conn:
        events = await load(conn, handlers.enterprise_stream(enterprise_id))
    state = handlers.folded_enterprise(events)
    # A chamber sees only the enterprises of its regions: the others do not exist for it.
    if not state.registered or not principal.sees_region(state.region):
        raise NotFound("enterprise", enterprise_id)
    personal = sees_personal_data(principal)
    response.headers["ETag"] = f'"{len(events)}"'
    return EnterpriseView.of(
        state, len(events), history(events, personal=personal), personal=personal
    )


@router.get(
    "/enterprises",
    tags=["enterprises"],
    summary="Enterprises, in the order they were registered",
    responses=problem_responses(401, 403, 422),
)
async def list_enterprises(
    principal: Reader,
    runtime: RuntimeDep,
    region: Annotated[
        RegionSlug | None, Query(description="Only this region; a chamber may name only its own")
    ] = None,
    country: Annotated[KnownCountry | None, Query(description="Only this country")] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many")] = 50,
    cursor: Annotated[
        IdPattern | None, Query(description="The `next_cursor` of the previous page")
    ] = None,
) -> EnterprisePage:
    regions: tuple[str, ...] | None = None
    if region is not None:
        queried_region(country or runtime.settings.country, region)
        if not principal.sees_region(region):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "a chamber lists its own regions only")
        regions = (region,)
    elif principal.role == "chamber":
        regions = principal.regions
    async with runtime.database.transaction(write=False) as conn:
        rows = await enterprise_list.page(
            conn, country=country, regions=regions, after=cursor, limit=limit + 1
        )
    personal = sees_personal_data(principal)
    items = [EnterpriseSummary.of(row, personal=personal) for row in rows[:limit]]
    more = len(rows) > limit
    return EnterprisePage(items=items, next_cursor=items[-1].id if more else None)


@router.post(
    "/enterprises/{enterprise_id}/enrolments",
    **ADD,
    tags=["enrolments"],
    summary="Enrol an enterprise in a module",
)
async def enrol(
    _: Writer, enterprise_id: EnterpriseId, body: EnrolBody, write: ExistingWrite
) -> BaseModel | JSONResponse:
    """Refused after a withdrawal (`no-enrolment-after-withdrawal`), for a module the
    enterprise is already enrolled in (`one-enrolment-per-module`), and for a module other
    than 1 before module 1 unless an `exception_reason` is given (`module-1-first`)."""
    command = Enrol(enterprise_id=enterprise_id, enrolment_id=uuid7(), **dict(body))
    return await write(command)


@router.post(
    "/enterprises/{enterprise_id}/trainings",
    **ADD,
    tags=["enrolments"],
    summary="Record a classroom training of an enrolment",
)
async def record_training(
    _: Writer, enterprise_id: EnterpriseId, body: TrainingBody, write: ExistingWrite
) -> BaseModel | JSONResponse:
    """Refused for an enrolment the enterprise does not have (`training-needs-enrolment`)
    and for a date after the enterprise withdrew (`no-training-after-withdrawal`)."""
    return await write(RecordTraining(enterprise_id=enterprise_id, **dict(body)))


@router.post(
    "/enterprises/{enterprise_id}/payments",
    **ADD,
    tags=["enrolments"],
    summary="Record a training fee paid by the enterprise or a sponsor",
)
async def record_payment(
    _: Writer, enterprise_id: EnterpriseId, body: PaymentBody, write: ExistingWrite
) -> BaseModel | JSONResponse:
    """Refused for an enrolment the enterprise does not have (`payment-needs-enrolment`).
    A fee may be recorded after a withdrawal: it pays for training already given."""
    command = RecordFeePayment(enterprise_id=enterprise_id, **dict(body))
    return await write(command)


@router.post(
    "/enterprises/{enterprise_id}/completions",
    **ADD,
    tags=["enrolments"],
    summary="Record that an enterprise completed the module of an enrolment",
)
async def complete_module(
    _: Writer, enterprise_id: EnterpriseId, body: CompletionBody, write: ExistingWrite
) -> BaseModel | JSONResponse:
    """Refused for an enrolment the enterprise does not have (`completion-needs-enrolment`),
    a second time (`completed-once`), before any training (`completion-needs-training`) and
    for a date after the enterprise withdrew (`no-completion-after-withdrawal`)."""
    return await write(CompleteModule(enterprise_id=enterprise_id, **dict(body)))


@router.post(
    "/enterprises/{enterprise_id}/withdrawal",
    **CHANGE,
    tags=["enterprises"],
    summary="Withdraw an enterprise from the programme",
)
async def withdraw(
    _: Writer, enterprise_id: EnterpriseId, body: WithdrawalBody, write: ExistingWrite
) -> BaseModel | JSONResponse:
    """Refused when the enterprise has already withdrawn (`already-withdrawn`)."""
    return await write(Withdraw(enterprise_id=enterprise_id, **dict(body)))


@router.post(
    "/enterprises/{enterprise_id}/case-studies",
    **ADD,
    tags=["enterprises"],
    summary="Record a case study published about an enterprise",
)
async def publish_case_study(
    _: Writer, enterprise_id: EnterpriseId, body: CaseStudyBody, write: ExistingWrite
) -> BaseModel | JSONResponse:
    """Refused for an enterprise never trained (`case-study-needs-training`) and for a url
    already published (`case-study-published-once`)."""
    command = PublishCaseStudy(enterprise_id=enterprise_id, **dict(body))
    return await write(command)


# Trainers.


@router.post("/trainers", **REGISTER_TRAINER, tags=["trainers"], summary="Register a trainer")
async def register_trainer(
    _: Writer, body: RegisterTrainerBody, write: NewWrite
) -> BaseModel | JSONResponse:
    """Registration happens at the train-the-trainer workshop."""
    command = RegisterTrainer(trainer_id=uuid7(), **dict(body))
    return await write(command)


@router.get(
    "/trainers/{trainer_id}",
    tags=["trainers"],
    summary="A trainer: their current state and history",
    responses={200: {"headers": _ETAG}, **problem_responses(401, 404, 422)},
)
async def get_trainer(
    principal: Reader, trainer_id: TrainerId, runtime: RuntimeDep, response: Response
) -> TrainerView:
    async with runtime.database.transaction(write=False) as conn:
        events = await load(conn, handlers.trainer_stream(trainer_id))
    state = handlers.folded_trainer(events)
    if not state.registered or not principal.sees_region(state.region):
        raise NotFound("trainer", trainer_id)
    personal = sees_personal_data(principal)
    response.headers["ETag"] = f'"{len(events)}"'
    return TrainerView.of(state, len(events), history(events, personal=personal), personal=personal)


@router.post(
    "/trainers/{trainer_id}/certifications",
    **ADD,
    tags=["trainers"],
    summary="Certify a trainer for modules at the trainer or expert level",
)
async def certify_trainer(
    _: Writer, trainer_id: TrainerId, body: CertificationBody, write: ExistingWrite
) -> BaseModel | JSONResponse:
    """Refused when the trainer already holds that level, or a higher one, in every module
    named (`already-certified`)."""
    command = CertifyTrainer(
        trainer_id=trainer_id,
        modules=tuple(body.modules),
        level=body.level,
        certified_on=body.certified_on,
    )
    return await write(command)
