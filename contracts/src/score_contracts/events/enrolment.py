"""Events of the enrolment context: enterprises, their enrolments, trainers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field

from score_contracts.events.base import (
    Country,
    Delivery,
    Event,
    Headcount,
    Id,
    ModuleNumber,
    Money,
    Sex,
    Text,
)
from score_contracts.reference import SLUG


def _slug(value: str) -> str:
    if not SLUG.match(value):
        raise ValueError("must be a lowercase snake_case slug, e.g. 'santa_cruz'")
    return value


# The pattern puts the rule in the published JSON Schema; the validator words the error.
Region = Annotated[
    str, Field(max_length=64, json_schema_extra={"pattern": SLUG.pattern}), AfterValidator(_slug)
]


class EnrolmentEvent(Event):
    context: ClassVar[str] = "enrolment"


class EnterpriseEvent(EnrolmentEvent):
    aggregate: ClassVar[str] = "enterprise"
    enterprise_id: Id


class TrainerEvent(EnrolmentEvent):
    aggregate: ClassVar[str] = "trainer"
    trainer_id: Id


_PERSONAL = (
    "Personal data: recorded in the enrolment service and shown by its API to programme "
    "staff; never on the public stream, where it is absent."
)


class EnterpriseRegistered(EnterpriseEvent):
    event_name: ClassVar[str] = "enterprise_registered"
    personal_fields: ClassVar[frozenset[str]] = frozenset({"name", "tax_id"})
    name: Text | None = Field(default=None, description=_PERSONAL)
    tax_id: Text | None = Field(default=None, description=_PERSONAL)
    country: Country
    region: Region
    sector: Text
    chamber: Text
    workforce: Headcount
    registered_on: dt.date
    size_exception_reason: Text | None = None


class EnterpriseDetailsCorrected(EnterpriseEvent):
    """Only the fields that changed are present. On the public stream a correction of the
    name alone carries no changed field: something not public was corrected."""

    event_name: ClassVar[str] = "enterprise_details_corrected"
    personal_fields: ClassVar[frozenset[str]] = frozenset({"name"})
    workforce: Headcount | None = None
    sector: Text | None = None
    chamber: Text | None = None
    name: Text | None = Field(default=None, description=_PERSONAL)
    corrected_on: dt.date | None = None


class EnterpriseEnrolled(EnterpriseEvent):
    event_name: ClassVar[str] = "enterprise_enrolled"
    enrolment_id: Id
    module: ModuleNumber
    delivery: Delivery
    partner: Text | None = None
    delivery_cost: Money
    enrolled_on: dt.date
    exception_reason: Text | None = None


class ParticipantsTrained(EnterpriseEvent):
    """A classroom training of an enrolment: managers and workers who attended, by sex."""

    event_name: ClassVar[str] = "participants_trained"
    enrolment_id: Id
    module: ModuleNumber
    trained_on: dt.date
    trainer_id: Id | None = None
    managers: Headcount
    workers: Headcount


class TrainingFeePaid(EnterpriseEvent):
    event_name: ClassVar[str] = "training_fee_paid"
    enrolment_id: Id
    amount: Money
    paid_on: dt.date
    payer: Literal["enterprise", "sponsor"]


class ModuleCompleted(EnterpriseEvent):
    event_name: ClassVar[str] = "module_completed"
    enrolment_id: Id
    module: ModuleNumber
    completed_on: dt.date


class EnterpriseWithdrawn(EnterpriseEvent):
    event_name: ClassVar[str] = "enterprise_withdrawn"
    reason: Text
    withdrawn_on: dt.date


class CaseStudyPublished(EnterpriseEvent):
    event_name: ClassVar[str] = "case_study_published"
    title: Text
    url: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^https?://\S+$")]
    published_on: dt.date


class TrainerRegistered(TrainerEvent):
    """Registration happens at the train-the-trainer workshop."""

    event_name: ClassVar[str] = "trainer_registered"
    personal_fields: ClassVar[frozenset[str]] = frozenset({"name"})
    name: Text | None = Field(default=None, description=_PERSONAL)
    sex: Sex
    country: Country
    region: Region
    organisation: Text
    registered_on: dt.date


class TrainerCertified(TrainerEvent):
    event_name: ClassVar[str] = "trainer_certified"
    modules: Annotated[list[ModuleNumber], Field(min_length=1, max_length=5)]
    level: Literal["trainer", "expert"]
    certified_on: dt.date
