"""HTTP API of the enrolment service: parse, call the command handler, answer."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from fastapi.responses import JSONResponse
from pydantic import Field, ValidationInfo, field_validator

from score_chassis.api import (
    Body,
    CausationDep,
    IfMatchDep,
    PastDate,
    RuntimeDep,
    Written,
    today,
)
from score_chassis.auth import Reader, Writer
from score_chassis.idempotency import IdempotencyDep, write_once
from score_chassis.problems import PROBLEM_RESPONSES, NotFound
from score_contracts.events.base import Country, Delivery, Headcount, Id, ModuleNumber, Money, Text
from score_contracts.ids import uuid7
from score_contracts.reference import DEFAULT_COUNTRY, check_region
from score_enrolment import handlers
from score_enrolment.domain import Enrol, Enterprise, RecordTraining, RegisterEnterprise

router = APIRouter(prefix="/v1", responses=PROBLEM_RESPONSES)

EnterpriseId = Annotated[str, Path(description="The enterprise's id")]


class RegisterEnterpriseBody(Body):
    name: Text
    tax_id: Text
    country: Country = DEFAULT_COUNTRY
    region: str = Field(description="Region slug, e.g. `santa_cruz`", examples=["santa_cruz"])
    sector: Text
    chamber: Text = Field(description="The regional chamber the enterprise belongs to")
    workforce: Headcount
    registered_on: PastDate = Field(default_factory=today)
    size_exception_reason: Text | None = Field(
        default=None, description="Required when the workforce is outside the targeted range"
    )

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str, info: ValidationInfo) -> str:
        return check_region(info.data.get("country", DEFAULT_COUNTRY), region)


class EnrolBody(Body):
    module: ModuleNumber
    delivery: Delivery
    partner: Text | None = Field(default=None, description="The partner delivering it")
    delivery_cost: Money
    enrolled_on: PastDate = Field(default_factory=today)
    exception_reason: Text | None = Field(
        default=None, description="Required to start with a module other than 1"
    )


class TrainingBody(Body):
    enrolment_id: Id
    trained_on: PastDate = Field(default_factory=today)
    trainer_id: Id | None = None
    managers: Headcount
    workers: Headcount


class EnrolmentView(Body):
    enrolment_id: str
    module: int
    delivery: str
    enrolled_on: dt.date
    trainings: int


class EnterpriseView(Body):
    id: str
    version: int
    name: str
    tax_id: str
    country: str
    region: str
    sector: str
    chamber: str
    workforce: Headcount
    registered_on: dt.date
    withdrawn: bool
    enrolments: list[EnrolmentView]

    @classmethod
    def of(cls, state: Enterprise, version: int) -> EnterpriseView:
        assert state.workforce is not None and state.registered_on is not None
        fields: dict[str, Any] = {
            "id": state.enterprise_id,
            "version": version,
            "name": state.name,
            "tax_id": state.tax_id,
            "country": state.country,
            "region": state.region,
            "sector": state.sector,
            "chamber": state.chamber,
            "workforce": state.workforce,
            "registered_on": state.registered_on,
            "withdrawn": state.withdrawn,
            "enrolments": [
                EnrolmentView(
                    enrolment_id=e.enrolment_id,
                    module=e.module,
                    delivery=e.delivery,
                    enrolled_on=e.enrolled_on,
                    trainings=e.trainings,
                )
                for e in state.enrolments.values()
            ],
        }
        return cls(**fields)


@router.post(
    "/enterprises",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
    response_model_exclude_none=True,
    tags=["enterprises"],
    summary="Register an enterprise",
)
async def register_enterprise(
    body: RegisterEnterpriseBody,
    runtime: RuntimeDep,
    causation: CausationDep,
    idempotency: IdempotencyDep,
    _: Writer,
) -> Written | JSONResponse:
    command = RegisterEnterprise(
        enterprise_id=uuid7(),
        size_range=handlers.size_range(runtime),
        **body.model_dump(exclude={"workforce"}),
        workforce=body.workforce,
    )
    return await write_once(
        runtime.database,
        idempotency,
        partial(handlers.execute, runtime, command, causation=causation),
        lambda outcome: Written(id=command.enterprise_id, version=outcome.version),
        status_code=201,
        ttl=runtime.idempotency_ttl,
    )


@router.get("/enterprises/{enterprise_id}", tags=["enterprises"], summary="An enterprise")
async def get_enterprise(
    enterprise_id: EnterpriseId, runtime: RuntimeDep, principal: Reader
) -> EnterpriseView:
    state, version = await handlers.load(runtime, enterprise_id)
    # A chamber sees only the enterprises of its regions: the others do not exist for it.
    if not state.registered or not principal.sees_region(state.region):
        raise NotFound("enterprise", enterprise_id)
    return EnterpriseView.of(state, version)


@router.post(
    "/enterprises/{enterprise_id}/enrolments",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
    response_model_exclude_none=True,
    tags=["enrolments"],
    summary="Enrol an enterprise in a module",
)
async def enrol(
    enterprise_id: EnterpriseId,
    body: EnrolBody,
    runtime: RuntimeDep,
    causation: CausationDep,
    expected_version: IfMatchDep,
    idempotency: IdempotencyDep,
    _: Writer,
) -> Written | JSONResponse:
    command = Enrol(
        enterprise_id=enterprise_id,
        enrolment_id=uuid7(),
        **body.model_dump(exclude={"delivery_cost"}),
        delivery_cost=body.delivery_cost,
    )
    return await write_once(
        runtime.database,
        idempotency,
        partial(
            handlers.execute,
            runtime,
            command,
            causation=causation,
            expected_version=expected_version,
        ),
        lambda outcome: Written(
            id=enterprise_id, version=outcome.version, enrolment_id=command.enrolment_id
        ),
        status_code=201,
        ttl=runtime.idempotency_ttl,
    )


@router.post(
    "/enterprises/{enterprise_id}/trainings",
    status_code=status.HTTP_201_CREATED,
    response_model=Written,
    response_model_exclude_none=True,
    tags=["enrolments"],
    summary="Record a classroom training of an enrolment",
)
async def record_training(
    enterprise_id: EnterpriseId,
    body: TrainingBody,
    runtime: RuntimeDep,
    causation: CausationDep,
    expected_version: IfMatchDep,
    idempotency: IdempotencyDep,
    _: Writer,
) -> Written | JSONResponse:
    command = RecordTraining(
        enterprise_id=enterprise_id,
        **body.model_dump(exclude={"managers", "workers"}),
        managers=body.managers,
        workers=body.workers,
    )
    return await write_once(
        runtime.database,
        idempotency,
        partial(
            handlers.execute,
            runtime,
            command,
            causation=causation,
            expected_version=expected_version,
        ),
        lambda outcome: Written(id=enterprise_id, version=outcome.version),
        status_code=201,
        ttl=runtime.idempotency_ttl,
    )
