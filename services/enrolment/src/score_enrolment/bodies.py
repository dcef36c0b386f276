"""What the enrolment API reads and answers.

Request bodies: the event's data, less the ids the server assigns and those in the path.
Business dates default to today, `country` to `bo`, currency to `BOB`. What can be judged from
the body alone is checked here (a known region, a positive fee, a partner named for partner
delivery); what needs the history is the decider's.

Answers: a write's (`Written`), and an enterprise or trainer as folded from its events, with
the events themselves, and pages of the enterprise list. Names and tax ids are personal data.
Only the roles that record them (staff, admin) read them back; for every other role they are
null in the state and left out of the history, which then shows each event as the public
stream carries it (ADR 011).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Final, Literal

import sqlalchemy as sa
from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from score_chassis.http.inputs import (
    Body,
    KnownCountry,
    Line,
    PastDate,
    RegionSlug,
    known_region,
    today,
)
from score_chassis.http.inputs import Written as _Written
from score_chassis.store import RecordedEvent
from score_chassis.tokens import WRITERS, Principal
from score_contracts.events import BY_TYPE
from score_contracts.events.base import (
    Delivery,
    Headcount,
    Id,
    ModuleNumber,
    Money,
    Sex,
)
from score_contracts.reference import DEFAULT_COUNTRY
from score_enrolment.domain.enterprise import Enrolment, Enterprise
from score_enrolment.domain.trainer import Level, Trainer

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


# Answers.


class Written(_Written):
    """The answer to a write: the aggregate's id, its new version, and the id of the
    enrolment it made, if it made one."""

    enrolment_id: str | None = Field(default=None, description="Set when an enrolment is made")


ONLY_FOR_STAFF: Final = "Personal data: shown to staff and admin tokens only, otherwise null"


def sees_personal_data(principal: Principal) -> bool:
    return principal.role in WRITERS


class HistoryEntry(BaseModel):
    """One event of the aggregate's stream."""

    type: str = Field(examples=["org.ilo.score.enrolment.enterprise_enrolled.v1"])
    version: int = Field(description="The event's version in the aggregate's stream")
    time: dt.datetime = Field(description="When it was recorded")
    data: dict[str, Any] = Field(
        description="The event's payload; for roles that do not read personal data, as the "
        "public stream carries it"
    )


def history(events: list[RecordedEvent], *, personal: bool) -> list[HistoryEntry]:
    return [
        HistoryEntry(
            type=e.type,
            version=e.version,
            time=e.occurred_at,
            data=e.data if personal else BY_TYPE[e.type].public_data(e.data),
        )
        for e in events
    ]


class EnrolmentView(BaseModel):
    enrolment_id: str
    module: int
    delivery: str
    partner: str | None
    delivery_cost: Money
    enrolled_on: dt.date
    exception_reason: str | None
    trainings: int
    first_trained_on: dt.date | None
    managers: Headcount = Field(description="Managers trained, summed over the trainings")
    workers: Headcount = Field(description="Workers trained, summed over the trainings")
    payments: int
    fees_paid: Money
    completed_on: dt.date | None

    @classmethod
    def of(cls, enrolment: Enrolment) -> EnrolmentView:
        return cls(
            enrolment_id=enrolment.enrolment_id,
            module=enrolment.module,
            delivery=enrolment.delivery,
            partner=enrolment.partner,
            delivery_cost=enrolment.delivery_cost,
            enrolled_on=enrolment.enrolled_on,
            exception_reason=enrolment.exception_reason,
            trainings=enrolment.trainings,
            first_trained_on=enrolment.first_trained_on,
            managers=enrolment.managers,
            workers=enrolment.workers,
            payments=enrolment.payments,
            fees_paid=Money(
                amount=f"{enrolment.fees_paid:f}", currency=enrolment.delivery_cost.currency
            ),
            completed_on=enrolment.completed_on,
        )


class CaseStudyView(BaseModel):
    title: str
    url: str
    published_on: dt.date


class EnterpriseView(BaseModel):
    """An enterprise as its events have made it, and those events."""

    id: str
    version: int
    name: str | None = Field(description=ONLY_FOR_STAFF)
    tax_id: str | None = Field(description=ONLY_FOR_STAFF)
    country: str
    region: str
    sector: str
    chamber: str
    workforce: Headcount
    registered_on: dt.date
    size_exception_reason: str | None
    withdrawn: bool
    withdrawn_on: dt.date | None
    withdrawal_reason: str | None
    enrolments: list[EnrolmentView] = Field(description="In the order they were made")
    case_studies: list[CaseStudyView]
    history: list[HistoryEntry]

    @classmethod
    def of(
        cls, state: Enterprise, version: int, events: list[HistoryEntry], *, personal: bool
    ) -> EnterpriseView:
        assert state.registered_on is not None
        return cls(
            id=state.enterprise_id,
            version=version,
            name=state.name if personal else None,
            tax_id=state.tax_id if personal else None,
            country=state.country,
            region=state.region,
            sector=state.sector,
            chamber=state.chamber,
            workforce=state.workforce,
            registered_on=state.registered_on,
            size_exception_reason=state.size_exception_reason,
            withdrawn=state.withdrawn,
            withdrawn_on=state.withdrawn_on,
            withdrawal_reason=state.withdrawal_reason,
            enrolments=[EnrolmentView.of(e) for e in state.enrolments.values()],
            case_studies=[
                CaseStudyView(title=c.title, url=c.url, published_on=c.published_on)
                for c in state.case_studies
            ],
            history=events,
        )


class EnterpriseSummary(BaseModel):
    """An enterprise as the list shows it."""

    id: str
    version: int
    name: str | None = Field(description=ONLY_FOR_STAFF)
    country: str
    region: str
    sector: str
    chamber: str
    workforce: Headcount
    registered_on: dt.date
    withdrawn_on: dt.date | None

    @classmethod
    def of(cls, row: sa.Row[Any], *, personal: bool) -> EnterpriseSummary:
        return cls(
            id=row.enterprise_id,
            version=row.version,
            name=row.name if personal else None,
            country=row.country,
            region=row.region,
            sector=row.sector,
            chamber=row.chamber,
            workforce=Headcount(women=row.workforce_women, men=row.workforce_men),
            registered_on=row.registered_on,
            withdrawn_on=row.withdrawn_on,
        )


class EnterprisePage(BaseModel):
    items: list[EnterpriseSummary]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page"
    )


class CertificationView(BaseModel):
    module: int
    level: Level = Field(description="The highest level held in the module")
    certified_on: dt.date


class TrainerView(BaseModel):
    """A trainer as their events have made them, and those events."""

    id: str
    version: int
    name: str | None = Field(description=ONLY_FOR_STAFF)
    sex: str
    country: str
    region: str
    organisation: str
    registered_on: dt.date
    certifications: list[CertificationView] = Field(description="By module")
    history: list[HistoryEntry]

    @classmethod
    def of(
        cls, state: Trainer, version: int, events: list[HistoryEntry], *, personal: bool
    ) -> TrainerView:
        assert state.registered_on is not None
        return cls(
            id=state.trainer_id,
            version=version,
            name=state.name if personal else None,
            sex=state.sex,
            country=state.country,
            region=state.region,
            organisation=state.organisation,
            registered_on=state.registered_on,
            certifications=[
                CertificationView(module=m, level=c.level, certified_on=c.certified_on)
                for m, c in sorted(state.certifications.items())
            ],
            history=events,
        )
