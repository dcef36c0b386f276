"""The enterprise aggregate: its commands, its state, and the rules that decide between them.

`decide` reads like the rules a programme officer would state; `evolve` folds the events
into the state those rules are judged against. Both are pure. Each refusal names its rule;
a command that is malformed only in the light of the history (a training dated before its
enrolment) is `Invalid`, naming the field and the rule.

A command other than the registration reaches `decide` only for a registered enterprise (the
chassis answers 404 otherwise), and a registration only for a new one (its id is the
server's).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Final, Literal

from score_chassis.decider import Decider, Invalid, Refused
from score_contracts.events import (
    CaseStudyPublished,
    EnterpriseDetailsCorrected,
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    Event,
    Headcount,
    ModuleCompleted,
    Money,
    ParticipantsTrained,
    TrainingFeePaid,
)
from score_contracts.events.base import Delivery

NOBODY: Final = Headcount(women=0, men=0)


@dataclass(frozen=True, slots=True)
class SizeRange:
    """The workforce SCORE targets; outside it an enterprise needs a stated reason."""

    minimum: int = 30
    maximum: int = 250

    def __contains__(self, workforce: object) -> bool:
        return isinstance(workforce, Headcount) and (
            self.minimum <= workforce.total <= self.maximum
        )


# Commands: imperative, plain data.


@dataclass(frozen=True, slots=True)
class RegisterEnterprise:
    enterprise_id: str
    name: str
    tax_id: str
    country: str
    region: str
    sector: str
    chamber: str
    workforce: Headcount
    registered_on: dt.date
    size_exception_reason: str | None = None
    size_range: SizeRange = SizeRange()
    """The configured range; the handler sets it from the settings. (That a tax id is
    registered once is the enterprise list's rule: no aggregate sees another's events.)"""


@dataclass(frozen=True, slots=True)
class CorrectDetails:
    """Set what was recorded wrongly; fields left None are not being corrected."""

    enterprise_id: str
    corrected_on: dt.date
    workforce: Headcount | None = None
    sector: str | None = None
    chamber: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Enrol:
    enterprise_id: str
    enrolment_id: str
    module: int
    delivery: Delivery
    delivery_cost: Money
    enrolled_on: dt.date
    partner: str | None = None
    exception_reason: str | None = None


@dataclass(frozen=True, slots=True)
class RecordTraining:
    enterprise_id: str
    enrolment_id: str
    trained_on: dt.date
    managers: Headcount
    workers: Headcount
    trainer_id: str | None = None
    trainer_registered: bool = False
    """Whether `trainer_id` names a registered trainer; the handler looks it up in the
    trainer's stream, which the enterprise cannot see."""


@dataclass(frozen=True, slots=True)
class RecordFeePayment:
    enterprise_id: str
    enrolment_id: str
    amount: Money
    paid_on: dt.date
    payer: Literal["enterprise", "sponsor"]


@dataclass(frozen=True, slots=True)
class CompleteModule:
    enterprise_id: str
    enrolment_id: str
    completed_on: dt.date


@dataclass(frozen=True, slots=True)
class Withdraw:
    enterprise_id: str
    reason: str
    withdrawn_on: dt.date


@dataclass(frozen=True, slots=True)
class PublishCaseStudy:
    enterprise_id: str
    title: str
    url: str
    published_on: dt.date


Command = (
    RegisterEnterprise
    | CorrectDetails
    | Enrol
    | RecordTraining
    | RecordFeePayment
    | CompleteModule
    | Withdraw
    | PublishCaseStudy
)


# State.


@dataclass(frozen=True, slots=True)
class Enrolment:
    """One module an enterprise is enrolled in, and what has happened in it since."""

    enrolment_id: str
    module: int
    delivery: Delivery
    delivery_cost: Money
    enrolled_on: dt.date
    partner: str | None = None
    exception_reason: str | None = None
    trainings: int = 0
    first_trained_on: dt.date | None = None
    managers: Headcount = NOBODY
    workers: Headcount = NOBODY
    payments: int = 0
    fees_paid: Decimal = Decimal(0)
    completed_on: dt.date | None = None

    @property
    def trained(self) -> bool:
        return self.trainings > 0


@dataclass(frozen=True, slots=True)
class CaseStudy:
    title: str
    url: str
    published_on: dt.date


@dataclass(frozen=True, slots=True)
class Enterprise:
    registered: bool = False
    enterprise_id: str = ""
    name: str = ""
    tax_id: str = ""
    country: str = ""
    region: str = ""
    sector: str = ""
    chamber: str = ""
    registered_on: dt.date | None = None
    workforce: Headcount = NOBODY
    size_exception_reason: str | None = None
    enrolments: dict[str, Enrolment] = field(default_factory=dict)
    latest_activity_on: dt.date | None = None
    """The latest enrolment, training or completion: a withdrawal cannot predate it."""
    withdrawn_on: dt.date | None = None
    withdrawal_reason: str | None = None
    case_studies: tuple[CaseStudy, ...] = ()

    @property
    def withdrawn(self) -> bool:
        return self.withdrawn_on is not None

    @property
    def modules(self) -> set[int]:
        return {e.module for e in self.enrolments.values()}

    @property
    def first_trained_on(self) -> dt.date | None:
        dates = [e.first_trained_on for e in self.enrolments.values() if e.first_trained_on]
        return min(dates, default=None)


def decide(command: Command, state: Enterprise) -> list[Event]:
    match command:
        case RegisterEnterprise(workforce=w, size_exception_reason=None, size_range=r) if (
            w not in r
        ):
            raise Refused(
                f"a workforce of {w.total} is outside {r.minimum}–{r.maximum}: "
                "state a size_exception_reason",
                rule="size-range-needs-reason",
            )
        case RegisterEnterprise():
            return [_registered(command)]

        case CorrectDetails(corrected_on=d) if _before(d, state.registered_on):
            raise Invalid(
                "corrected_on",
                "is before the enterprise was registered",
                rule="date-before-registration",
            )
        case CorrectDetails():
            return _corrections(command, state)

        case Enrol() if state.withdrawn:
            raise Refused("the enterprise has withdrawn", rule="no-enrolment-after-withdrawal")
        case Enrol(module=m) if m in state.modules:
            raise Refused(
                f"the enterprise is already enrolled in module {m}",
                rule="one-enrolment-per-module",
            )
        case Enrol(module=m, exception_reason=None) if m != 1 and 1 not in state.modules:
            raise Refused(
                "module 1 comes first unless an exception_reason is given", rule="module-1-first"
            )
        case Enrol(enrolled_on=d) if _before(d, state.registered_on):
            raise Invalid(
                "enrolled_on",
                "is before the enterprise was registered",
                rule="date-before-registration",
            )
        case Enrol():
            return [_enrolled(command, state)]

        case RecordTraining(enrolment_id=e) if e not in state.enrolments:
            raise Refused(f"the enterprise has no enrolment {e}", rule="training-needs-enrolment")
        case RecordTraining(trainer_id=t, trainer_registered=False) if t is not None:
            raise Refused(f"no trainer {t} is registered", rule="training-needs-registered-trainer")
        case RecordTraining(trained_on=d) if _before(state.withdrawn_on, d):
            raise Refused(
                "the enterprise had withdrawn by then", rule="no-training-after-withdrawal"
            )
        case RecordTraining(trained_on=d, enrolment_id=e) if d < state.enrolments[e].enrolled_on:
            raise Invalid("trained_on", "is before the enrolment", rule="date-before-enrolment")
        case RecordTraining(managers=m, workers=w) if m.total + w.total == 0:
            raise Invalid(
                "participants",
                "a training has at least one manager or worker",
                rule="training-has-participants",
            )
        case RecordTraining(managers=m, workers=w) if m.total + w.total > state.workforce.total:
            # One classroom training cannot seat more people than the enterprise employs.
            raise Invalid(
                "participants",
                f"{m.total + w.total} managers and workers are more than the enterprise's "
                f"workforce of {state.workforce.total}",
                rule="participants-within-workforce",
            )
        case RecordTraining():
            return [_trained(command, state)]

        case RecordFeePayment(enrolment_id=e) if e not in state.enrolments:
            raise Refused(f"the enterprise has no enrolment {e}", rule="payment-needs-enrolment")
        case RecordFeePayment(paid_on=d, enrolment_id=e) if d < state.enrolments[e].enrolled_on:
            raise Invalid("paid_on", "is before the enrolment", rule="date-before-enrolment")
        case RecordFeePayment(amount=a, enrolment_id=e) if (
            a.currency != state.enrolments[e].delivery_cost.currency
        ):
            # Cost recovery divides fees by cost: both must be in one currency.
            currency = state.enrolments[e].delivery_cost.currency
            raise Invalid(
                "amount.currency",
                f"must be the enrolment's currency, {currency}",
                rule="fee-in-enrolment-currency",
            )
        case RecordFeePayment():
            return [
                TrainingFeePaid(
                    enterprise_id=state.enterprise_id,
                    enrolment_id=command.enrolment_id,
                    amount=command.amount,
                    paid_on=command.paid_on,
                    payer=command.payer,
                )
            ]

        case CompleteModule(enrolment_id=e) if e not in state.enrolments:
            raise Refused(f"the enterprise has no enrolment {e}", rule="completion-needs-enrolment")
        case CompleteModule(enrolment_id=e) if state.enrolments[e].completed_on is not None:
            raise Refused("the module is already completed", rule="completed-once")
        case CompleteModule(enrolment_id=e) if not state.enrolments[e].trained:
            raise Refused(
                "a module is completed only after a training", rule="completion-needs-training"
            )
        case CompleteModule(completed_on=d) if _before(state.withdrawn_on, d):
            raise Refused(
                "the enterprise had withdrawn by then", rule="no-completion-after-withdrawal"
            )
        case CompleteModule(completed_on=d, enrolment_id=e) if _before(
            d, state.enrolments[e].first_trained_on
        ):
            raise Invalid(
                "completed_on",
                "is before the module's first training",
                rule="date-before-training",
            )
        case CompleteModule():
            return [
                ModuleCompleted(
                    enterprise_id=state.enterprise_id,
                    enrolment_id=command.enrolment_id,
                    module=state.enrolments[command.enrolment_id].module,
                    completed_on=command.completed_on,
                )
            ]

        case Withdraw() if state.withdrawn:
            raise Refused("the enterprise has already withdrawn", rule="already-withdrawn")
        case Withdraw(withdrawn_on=d) if _before(d, state.registered_on):
            raise Invalid(
                "withdrawn_on",
                "is before the enterprise was registered",
                rule="date-before-registration",
            )
        case Withdraw(withdrawn_on=d) if _before(d, state.latest_activity_on):
            raise Invalid(
                "withdrawn_on",
                "is before the enterprise's latest enrolment, training or completion",
                rule="withdrawal-after-activity",
            )
        case Withdraw():
            return [
                EnterpriseWithdrawn(
                    enterprise_id=state.enterprise_id,
                    reason=command.reason,
                    withdrawn_on=command.withdrawn_on,
                )
            ]

        case PublishCaseStudy() if state.first_trained_on is None:
            raise Refused(
                "a case study tells of an enterprise that was trained",
                rule="case-study-needs-training",
            )
        case PublishCaseStudy(url=u) if u in {c.url for c in state.case_studies}:
            raise Refused(
                "a case study at this url is already published", rule="case-study-published-once"
            )
        case PublishCaseStudy(published_on=d) if _before(d, state.first_trained_on):
            raise Invalid(
                "published_on",
                "is before the enterprise's first training",
                rule="date-before-training",
            )
        case PublishCaseStudy():
            return [
                CaseStudyPublished(
                    enterprise_id=state.enterprise_id,
                    title=command.title,
                    url=command.url,
                    published_on=command.published_on,
                )
            ]
    raise TypeError(f"not a command of the enterprise: {command!r}")


def _before(day: dt.date | None, bound: dt.date | None) -> bool:
    """Whether `day` is strictly before `bound`; an unknown date bounds nothing."""
    return day is not None and bound is not None and day < bound


def _registered(command: RegisterEnterprise) -> EnterpriseRegistered:
    return EnterpriseRegistered(
        enterprise_id=command.enterprise_id,
        name=command.name,
        tax_id=command.tax_id,
        country=command.country,
        region=command.region,
        sector=command.sector,
        chamber=command.chamber,
        workforce=command.workforce,
        registered_on=command.registered_on,
        size_exception_reason=command.size_exception_reason,
    )


def _corrections(command: CorrectDetails, state: Enterprise) -> list[Event]:
    """The fields that differ from what is recorded; correcting nothing records nothing.

    The size range is not applied to a corrected workforce: a correction states what was
    always true of an enterprise already admitted, and refusing it would keep a wrong figure.
    """
    changed = {
        name: value
        for name, value in (
            ("workforce", command.workforce),
            ("sector", command.sector),
            ("chamber", command.chamber),
            ("name", command.name),
        )
        if value is not None and value != getattr(state, name)
    }
    if not changed:
        return []
    return [
        EnterpriseDetailsCorrected(
            enterprise_id=state.enterprise_id, corrected_on=command.corrected_on, **changed
        )
    ]


def _enrolled(command: Enrol, state: Enterprise) -> EnterpriseEnrolled:
    return EnterpriseEnrolled(
        enterprise_id=state.enterprise_id,
        enrolment_id=command.enrolment_id,
        module=command.module,
        delivery=command.delivery,
        partner=command.partner,
        delivery_cost=command.delivery_cost,
        enrolled_on=command.enrolled_on,
        exception_reason=command.exception_reason,
    )


def _trained(command: RecordTraining, state: Enterprise) -> ParticipantsTrained:
    return ParticipantsTrained(
        enterprise_id=state.enterprise_id,
        enrolment_id=command.enrolment_id,
        module=state.enrolments[command.enrolment_id].module,
        trained_on=command.trained_on,
        trainer_id=command.trainer_id,
        managers=command.managers,
        workers=command.workers,
    )


def evolve(state: Enterprise, event: Event) -> Enterprise:
    match event:
        case EnterpriseRegistered():
            return replace(
                state,
                registered=True,
                enterprise_id=event.enterprise_id,
                # The store always holds them; only a public copy lacks them.
                name=event.name or "",
                tax_id=event.tax_id or "",
                country=event.country,
                region=event.region,
                sector=event.sector,
                chamber=event.chamber,
                registered_on=event.registered_on,
                workforce=event.workforce,
                size_exception_reason=event.size_exception_reason,
            )
        case EnterpriseDetailsCorrected():
            return replace(
                state,
                workforce=event.workforce or state.workforce,
                sector=event.sector or state.sector,
                chamber=event.chamber or state.chamber,
                name=event.name or state.name,
            )
        case EnterpriseEnrolled():
            enrolment = Enrolment(
                enrolment_id=event.enrolment_id,
                module=event.module,
                delivery=event.delivery,
                delivery_cost=event.delivery_cost,
                enrolled_on=event.enrolled_on,
                partner=event.partner,
                exception_reason=event.exception_reason,
            )
            return _active(_with(state, enrolment), event.enrolled_on)
        case ParticipantsTrained():
            trained = state.enrolments[event.enrolment_id]
            trained = replace(
                trained,
                trainings=trained.trainings + 1,
                first_trained_on=min(event.trained_on, trained.first_trained_on or dt.date.max),
                managers=_sum(trained.managers, event.managers),
                workers=_sum(trained.workers, event.workers),
            )
            return _active(_with(state, trained), event.trained_on)
        case TrainingFeePaid():
            paid = state.enrolments[event.enrolment_id]
            paid = replace(
                paid, payments=paid.payments + 1, fees_paid=paid.fees_paid + event.amount.value
            )
            return _with(state, paid)
        case ModuleCompleted():
            completed = replace(
                state.enrolments[event.enrolment_id], completed_on=event.completed_on
            )
            return _active(_with(state, completed), event.completed_on)
        case EnterpriseWithdrawn():
            return replace(state, withdrawn_on=event.withdrawn_on, withdrawal_reason=event.reason)
        case CaseStudyPublished():
            study = CaseStudy(title=event.title, url=event.url, published_on=event.published_on)
            return replace(state, case_studies=(*state.case_studies, study))
        case _:
            return state


def _with(state: Enterprise, enrolment: Enrolment) -> Enterprise:
    return replace(state, enrolments={**state.enrolments, enrolment.enrolment_id: enrolment})


def _active(state: Enterprise, day: dt.date) -> Enterprise:
    latest = max(day, state.latest_activity_on or day)
    return replace(state, latest_activity_on=latest)


def _sum(a: Headcount, b: Headcount) -> Headcount:
    return Headcount(women=a.women + b.women, men=a.men + b.men)


enterprise = Decider[Command, Enterprise, Event](
    decide=decide, evolve=evolve, initial_state=Enterprise()
)
