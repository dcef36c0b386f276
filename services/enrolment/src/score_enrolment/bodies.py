"""Request bodies of the enrolment API: the event's data, less the ids the server assigns and
those in the path. Business dates default to today, `country` to `bo`, currency to `BOB`.

What can be judged from the body alone is checked here (a known region, a positive fee, a
partner named for partner delivery); what needs the history is the decider's.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from score_chassis.api import Body, KnownCountry, Line, PastDate, RegionSlug, known_region, today
from score_contracts.events.base import (
    Delivery,
    Headcount,
    Id,
    ModuleNumber,
    Money,
    Sex,
)
from score_contracts.reference import DEFAULT_COUNTRY

Url = Annotated[
    str,
    Field(min_length=1, max_length=2000, pattern=r"^https?://\S+$", examples=["https://…"]),
]


class _Located(Body):
    """A body that places its aggregate in a country and one of its regions."""

    country: KnownCountry = Field(
        default=DEFAULT_COUNTRY,
        description="ISO 3166-1 alpha-2, lower case: a country whose regions are known",
    )
    region: RegionSlug = Field(description="Region slug, e.g. `santa_cruz`")

    @field_validator("region")
    @classmethod
    def _known_region(cls, region: str, info: ValidationInfo) -> str:
        country = info.data.get("country")
        if country is None:  # the country was refused already, and is named so
            return region
        return known_region(country, region)


class RegisterEnterpriseBody(_Located):
    name: Line
    tax_id: Line
    sector: Line
    chamber: Line = Field(description="The regional chamber the enterprise belongs to")
    workforce: Headcount
    registered_on: PastDate = Field(default_factory=today)
    size_exception_reason: Line | None = Field(
        default=None, description="Required when the workforce is outside the targeted range"
    )


class CorrectionBody(Body):
    """The details to set; those left out stay as they are. Values equal to the recorded
    ones change nothing, and a correction that changes nothing records nothing."""

    workforce: Headcount | None = None
    sector: Line | None = None
    chamber: Line | None = None
    name: Line | None = None
    corrected_on: PastDate = Field(default_factory=today)

    @model_validator(mode="after")
    def _corrects_something(self) -> CorrectionBody:
        if all(v is None for v in (self.workforce, self.sector, self.chamber, self.name)):
            raise ValueError("a correction sets workforce, sector, chamber or name")
        return self


class EnrolBody(Body):
    module: ModuleNumber
    delivery: Delivery
    partner: Line | None = Field(
        default=None,
        validate_default=True,
        description="Who delivers it: required for `partner` delivery, absent for `direct`",
    )
    delivery_cost: Money
    enrolled_on: PastDate = Field(default_factory=today)
    exception_reason: Line | None = Field(
        default=None, description="Required to start with a module other than 1"
    )

    @field_validator("partner")
    @classmethod
    def _partner_for_partner_delivery(cls, partner: str | None, info: ValidationInfo) -> str | None:
        delivery = info.data.get("delivery")
        if delivery == "partner" and partner is None:
            raise ValueError("is required for partner delivery")
        if delivery == "direct" and partner is not None:
            raise ValueError("is only given for partner delivery")
        return partner


class TrainingBody(Body):
    enrolment_id: Id
    trained_on: PastDate = Field(default_factory=today)
    trainer_id: Id | None = Field(default=None, description="The trainer who ran it")
    managers: Headcount
    workers: Headcount


class PaymentBody(Body):
    enrolment_id: Id
    amount: Money = Field(description="In the enrolment's currency")
    paid_on: PastDate = Field(default_factory=today)
    payer: Literal["enterprise", "sponsor"]

    @field_validator("amount")
    @classmethod
    def _positive(cls, amount: Money) -> Money:
        if amount.value <= 0:
            raise ValueError("a fee paid is more than zero")
        return amount


class CompletionBody(Body):
    enrolment_id: Id
    completed_on: PastDate = Field(default_factory=today)


class WithdrawalBody(Body):
    reason: Line
    withdrawn_on: PastDate = Field(default_factory=today)


class CaseStudyBody(Body):
    title: Line
    url: Url
    published_on: PastDate = Field(default_factory=today)


class RegisterTrainerBody(_Located):
    name: Line
    sex: Sex
    organisation: Line = Field(description="The chamber or institution the trainer works for")
    registered_on: PastDate = Field(
        default_factory=today, description="The day of the train-the-trainer workshop"
    )


class CertificationBody(Body):
    modules: list[ModuleNumber] = Field(min_length=1, max_length=5)
    level: Literal["trainer", "expert"]
    certified_on: PastDate = Field(default_factory=today)

    @field_validator("modules")
    @classmethod
    def _each_once(cls, modules: list[int]) -> list[int]:
        if len(set(modules)) != len(modules):
            raise ValueError("names each module once")
        return modules
