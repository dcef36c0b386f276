"""The enterprise's rules, each as the sentence a programme officer would say."""

from __future__ import annotations

import datetime as dt

from score_contracts.events import (
    CaseStudyPublished,
    EnterpriseDetailsCorrected,
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    Headcount,
    ModuleCompleted,
    Money,
    ParticipantsTrained,
    TrainingFeePaid,
)
from score_enrolment.domain.enterprise import (
    CompleteModule,
    CorrectDetails,
    Enrol,
    PublishCaseStudy,
    RecordFeePayment,
    RecordTraining,
    RegisterEnterprise,
    SizeRange,
    Withdraw,
    enterprise,
)
from score_testing.decider import scenario

given = scenario(enterprise)

DAY = dt.date(2017, 3, 1)
LATER = DAY + dt.timedelta(days=10)
MUCH_LATER = DAY + dt.timedelta(days=100)
registered = EnterpriseRegistered(
    enterprise_id="ent-1",
    name="Delizia",
    tax_id="1020304050",
    country="bo",
    region="la_paz",
    sector="food",
    chamber="Cámara Nacional de Industrias",
    workforce=Headcount(women=40, men=60),
    registered_on=DAY,
)
enrolled_m1 = EnterpriseEnrolled(
    enterprise_id="ent-1",
    enrolment_id="enr-1",
    module=1,
    delivery="direct",
    delivery_cost=Money(amount="3000"),
    enrolled_on=DAY,
)
trained_m1 = ParticipantsTrained(
    enterprise_id="ent-1",
    enrolment_id="enr-1",
    module=1,
    trained_on=LATER,
    managers=Headcount(women=1, men=1),
    workers=Headcount(women=2, men=0),
)
completed_m1 = ModuleCompleted(
    enterprise_id="ent-1", enrolment_id="enr-1", module=1, completed_on=MUCH_LATER
)
withdrawn = EnterpriseWithdrawn(enterprise_id="ent-1", reason="closed", withdrawn_on=MUCH_LATER)
case_study = CaseStudyPublished(
    enterprise_id="ent-1",
    title="Delizia: a notice board and a suggestion box",
    url="https://score.example.org/delizia",
    published_on=MUCH_LATER,
)


def register(**changes: object) -> RegisterEnterprise:
    fields: dict[str, object] = {
        **registered.model_dump(exclude={"size_exception_reason"}),
        "workforce": registered.workforce,
    }
    fields.update(changes)
    return RegisterEnterprise(**fields)  # type: ignore[arg-type]


def correct(**changes: object) -> CorrectDetails:
    return CorrectDetails(enterprise_id="ent-1", corrected_on=LATER, **changes)  # type: ignore[arg-type]


def enrol(module: int = 1, **changes: object) -> Enrol:
    fields: dict[str, object] = {
        "enterprise_id": "ent-1",
        "enrolment_id": f"enr-m{module}",
        "module": module,
        "delivery": "direct",
        "delivery_cost": Money(amount="3000"),
        "enrolled_on": DAY,
    }
    fields.update(changes)
    return Enrol(**fields)  # type: ignore[arg-type]


def train(enrolment_id: str = "enr-1", **changes: object) -> RecordTraining:
    fields: dict[str, object] = {
        "enterprise_id": "ent-1",
        "enrolment_id": enrolment_id,
        "trained_on": LATER,
        "managers": Headcount(women=1, men=1),
        "workers": Headcount(women=2, men=0),
    }
    fields.update(changes)
    return RecordTraining(**fields)  # type: ignore[arg-type]


def pay(enrolment_id: str = "enr-1", **changes: object) -> RecordFeePayment:
    fields: dict[str, object] = {
        "enterprise_id": "ent-1",
        "enrolment_id": enrolment_id,
        "amount": Money(amount="1500"),
        "paid_on": LATER,
        "payer": "enterprise",
    }
    fields.update(changes)
    return RecordFeePayment(**fields)  # type: ignore[arg-type]


def complete(enrolment_id: str = "enr-1", on: dt.date = MUCH_LATER) -> CompleteModule:
    return CompleteModule(enterprise_id="ent-1", enrolment_id=enrolment_id, completed_on=on)


def withdraw(on: dt.date = MUCH_LATER) -> Withdraw:
    return Withdraw(enterprise_id="ent-1", reason="closed", withdrawn_on=on)


def publish(url: str = case_study.url, on: dt.date = MUCH_LATER) -> PublishCaseStudy:
    return PublishCaseStudy(enterprise_id="ent-1", title=case_study.title, url=url, published_on=on)


# Registration.


def test_an_enterprise_in_the_size_range_is_registered() -> None:
    given().when(register()).then(registered)


def test_a_workforce_outside_the_size_range_needs_a_reason() -> None:
    small = register(workforce=Headcount(women=5, men=10))
    given().when(small).refuses("size-range-needs-reason")


def test_a_workforce_outside_the_size_range_with_a_reason_is_registered() -> None:
    small = register(workforce=Headcount(women=5, men=10), size_exception_reason="pilot cluster")
    event = given().when(small).then_one()
    assert isinstance(event, EnterpriseRegistered)
    assert event.size_exception_reason == "pilot cluster"


def test_the_size_range_is_configurable() -> None:
    given().when(register(size_range=SizeRange(minimum=10, maximum=20))).refuses(
        "size-range-needs-reason"
    )
    edge = register(workforce=Headcount(women=10, men=10), size_range=SizeRange(10, 20))
    given().when(edge).then_one()


# Corrections.


def test_a_correction_records_only_what_changes() -> None:
    same_sector_new_workforce = correct(sector="food", workforce=Headcount(women=45, men=60))
    given(registered).when(same_sector_new_workforce).then(
        EnterpriseDetailsCorrected(
            enterprise_id="ent-1", workforce=Headcount(women=45, men=60), corrected_on=LATER
        )
    )


def test_a_correction_that_changes_nothing_records_nothing() -> None:
    given(registered).when(correct(name="Delizia", chamber=registered.chamber)).then()


def test_a_corrected_workforce_outside_the_size_range_is_still_recorded() -> None:
    given(registered).when(correct(workforce=Headcount(women=3, men=2))).then_one()


def test_a_correction_is_not_dated_before_registration() -> None:
    early = CorrectDetails(enterprise_id="ent-1", corrected_on=DAY - dt.timedelta(1), name="D")
    given(registered).when(early).invalid("corrected_on")


# Enrolments.


def test_module_1_is_enrolled_first() -> None:
    given(registered).when(enrol(1)).then_one(
        lambda e: isinstance(e, EnterpriseEnrolled) and e.module == 1
    )


def test_no_enrolment_after_withdrawal() -> None:
    given(registered, withdrawn).when(enrol(1)).refuses("no-enrolment-after-withdrawal")


def test_module_1_comes_first() -> None:
    given(registered).when(enrol(5)).refuses("module-1-first")


def test_another_module_first_needs_an_exception_reason() -> None:
    given(registered).when(enrol(5, exception_reason="OSH emergency")).then_one()


def test_later_modules_follow_module_1() -> None:
    given(registered, enrolled_m1).when(enrol(2)).then_one()


def test_an_enterprise_is_enrolled_in_a_module_once() -> None:
    given(registered, enrolled_m1).when(enrol(1)).refuses("one-enrolment-per-module")


def test_an_enrolment_is_not_dated_before_registration() -> None:
    early = enrol(1, enrolled_on=DAY - dt.timedelta(days=1))
    given(registered).when(early).invalid("enrolled_on")


# Trainings.


def test_a_training_is_recorded_for_an_enrolment_with_its_module() -> None:
    given(registered, enrolled_m1).when(train()).then(trained_m1)


def test_a_training_needs_an_existing_enrolment() -> None:
    given(registered).when(train("enr-404")).refuses("training-needs-enrolment")


def test_a_training_is_run_by_a_registered_trainer() -> None:
    by_someone = train(trainer_id="tr-404")
    given(registered, enrolled_m1).when(by_someone).refuses("training-needs-registered-trainer")
    by_a_trainer = train(trainer_id="tr-1", trainer_registered=True)
    given(registered, enrolled_m1).when(by_a_trainer).then(
        trained_m1.model_copy(update={"trainer_id": "tr-1"})
    )


def test_no_training_after_withdrawal() -> None:
    after = train(trained_on=MUCH_LATER + dt.timedelta(days=1))
    given(registered, enrolled_m1, withdrawn).when(after).refuses("no-training-after-withdrawal")


def test_a_training_before_the_withdrawal_may_be_recorded_late() -> None:
    given(registered, enrolled_m1, withdrawn).when(train()).then(trained_m1)


def test_a_training_is_not_dated_before_its_enrolment() -> None:
    given(registered, enrolled_m1).when(train(trained_on=DAY - dt.timedelta(days=1))).invalid(
        "trained_on"
    )


def test_a_training_has_participants() -> None:
    nobody = train(managers=Headcount(women=0, men=0), workers=Headcount(women=0, men=0))
    given(registered, enrolled_m1).when(nobody).invalid("participants")


# Fees.


def test_a_fee_is_recorded_for_an_enrolment() -> None:
    given(registered, enrolled_m1).when(pay(payer="sponsor")).then(
        TrainingFeePaid(
            enterprise_id="ent-1",
            enrolment_id="enr-1",
            amount=Money(amount="1500"),
            paid_on=LATER,
            payer="sponsor",
        )
    )


def test_a_fee_needs_an_existing_enrolment() -> None:
    given(registered).when(pay("enr-404")).refuses("payment-needs-enrolment")


def test_a_fee_is_not_dated_before_its_enrolment() -> None:
    given(registered, enrolled_m1).when(pay(paid_on=DAY - dt.timedelta(days=1))).invalid("paid_on")


def test_a_fee_is_paid_in_the_enrolment_s_currency() -> None:
    in_dollars = pay(amount=Money(amount="200", currency="USD"))
    given(registered, enrolled_m1).when(in_dollars).invalid("amount.currency")


def test_a_fee_may_be_recorded_after_a_withdrawal() -> None:
    late = pay(paid_on=MUCH_LATER + dt.timedelta(days=30))
    given(registered, enrolled_m1, trained_m1, withdrawn).when(late).then_one()


# Completions.


def test_a_module_is_completed_after_a_training() -> None:
    given(registered, enrolled_m1, trained_m1).when(complete()).then(completed_m1)


def test_a_completion_needs_an_existing_enrolment() -> None:
    given(registered).when(complete("enr-404")).refuses("completion-needs-enrolment")


def test_a_module_is_completed_only_after_a_training() -> None:
    given(registered, enrolled_m1).when(complete()).refuses("completion-needs-training")


def test_a_module_is_completed_once() -> None:
    given(registered, enrolled_m1, trained_m1, completed_m1).when(complete()).refuses(
        "completed-once"
    )


def test_no_completion_after_withdrawal() -> None:
    after = complete(on=MUCH_LATER + dt.timedelta(days=1))
    given(registered, enrolled_m1, trained_m1, withdrawn).when(after).refuses(
        "no-completion-after-withdrawal"
    )


def test_a_completion_is_not_dated_before_the_first_training() -> None:
    early = complete(on=LATER - dt.timedelta(days=1))
    given(registered, enrolled_m1, trained_m1).when(early).invalid("completed_on")


# Withdrawal.


def test_an_enterprise_withdraws() -> None:
    given(registered, enrolled_m1, trained_m1).when(withdraw()).then(withdrawn)


def test_an_enterprise_withdraws_once() -> None:
    given(registered, withdrawn).when(withdraw()).refuses("already-withdrawn")


def test_a_withdrawal_is_not_dated_before_registration() -> None:
    given(registered).when(withdraw(on=DAY - dt.timedelta(days=1))).invalid("withdrawn_on")


def test_a_withdrawal_is_not_dated_before_the_latest_training() -> None:
    early = withdraw(on=LATER - dt.timedelta(days=1))
    given(registered, enrolled_m1, trained_m1).when(early).invalid("withdrawn_on")


# Case studies.


def test_a_case_study_is_published_about_a_trained_enterprise() -> None:
    given(registered, enrolled_m1, trained_m1).when(publish()).then(case_study)


def test_a_case_study_needs_a_trained_enterprise() -> None:
    given(registered, enrolled_m1).when(publish()).refuses("case-study-needs-training")


def test_a_case_study_is_published_once() -> None:
    given(registered, enrolled_m1, trained_m1, case_study).when(publish()).refuses(
        "case-study-published-once"
    )


def test_another_case_study_of_the_same_enterprise_is_published() -> None:
    other = publish(url="https://score.example.org/delizia-2")
    given(registered, enrolled_m1, trained_m1, case_study).when(other).then_one()


def test_a_case_study_is_not_dated_before_the_first_training() -> None:
    early = publish(on=LATER - dt.timedelta(days=1))
    given(registered, enrolled_m1, trained_m1).when(early).invalid("published_on")


# The state the rules are judged against.


def test_the_state_sums_trainings_and_fees_per_enrolment() -> None:
    second = trained_m1.model_copy(update={"trained_on": LATER + dt.timedelta(days=1)})
    fee = TrainingFeePaid(
        enterprise_id="ent-1",
        enrolment_id="enr-1",
        amount=Money(amount="1500.50"),
        paid_on=LATER,
        payer="enterprise",
    )
    state = enterprise.fold([registered, enrolled_m1, trained_m1, second, fee, fee])
    enrolment = state.enrolments["enr-1"]
    assert enrolment.trainings == 2
    assert enrolment.first_trained_on == LATER
    assert enrolment.managers == Headcount(women=2, men=2)
    assert enrolment.workers == Headcount(women=4, men=0)
    assert str(enrolment.fees_paid) == "3001.00"
    assert enrolment.payments == 2
