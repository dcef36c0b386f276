"""The visit's rules, each as the sentence a programme officer would say."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

from score_chassis.decider import NotKnownYet
from score_contracts.events import Improvement, VisitCancelled, VisitCompleted, VisitScheduled
from score_testing.decider import scenario
from score_visits.domain import (
    CancelVisit,
    CompleteVisit,
    EnterpriseFacts,
    ScheduleVisit,
    TrainerFacts,
    visit,
)

given = scenario(visit)

DAY = dt.date(2018, 5, 8)
ENROLLED_IN_M1 = EnterpriseFacts(
    known=True, country="bo", region="santa_cruz", modules=frozenset({1})
)
CERTIFIED_FOR_M1_M2 = TrainerFacts(known=True, modules=frozenset({1, 2}))

scheduled = VisitScheduled(
    visit_id="vis-1", enterprise_id="ent-1", trainer_id="tra-1", module=1, scheduled_for=DAY
)
completed = VisitCompleted(
    visit_id="vis-1",
    enterprise_id="ent-1",
    trainer_id="tra-1",
    module=1,
    completed_on=DAY,
    duration_hours=Decimal("3.5"),
)
cancelled = VisitCancelled(
    visit_id="vis-1", enterprise_id="ent-1", reason="transport strike", cancelled_on=DAY
)
FIVE_S = Improvement(area="Almacén", description="5S: rollos clasificados y etiquetados")


def schedule(
    module: int = 1,
    enterprise: EnterpriseFacts = ENROLLED_IN_M1,
    trainer: TrainerFacts = CERTIFIED_FOR_M1_M2,
) -> ScheduleVisit:
    return ScheduleVisit(
        visit_id="vis-1",
        enterprise_id="ent-1",
        trainer_id="tra-1",
        module=module,
        scheduled_for=DAY,
        enterprise=enterprise,
        trainer=trainer,
    )


def complete(
    completed_on: dt.date = DAY, enterprise: EnterpriseFacts = ENROLLED_IN_M1
) -> CompleteVisit:
    return CompleteVisit(
        visit_id="vis-1",
        completed_on=completed_on,
        duration_hours=Decimal("3.5"),
        improvements=(FIVE_S,),
        enterprise=enterprise,
    )


def cancel() -> CancelVisit:
    return CancelVisit(visit_id="vis-1", reason="transport strike", cancelled_on=DAY)


# Scheduling: an enterprise enrolled in the module and not withdrawn, a certified trainer.


def test_a_visit_is_scheduled_for_an_enrolled_enterprise_by_a_certified_trainer() -> None:
    given().when(schedule()).then(scheduled)


def test_no_visit_to_a_withdrawn_enterprise() -> None:
    withdrawn = EnterpriseFacts(
        known=True, region="santa_cruz", modules=frozenset({1}), withdrawn_on=DAY
    )
    refused = given().when(schedule(enterprise=withdrawn)).refuses("enterprise-withdrawn")
    assert not isinstance(refused, NotKnownYet)


def test_a_withdrawal_known_before_the_registration_still_refuses() -> None:
    # The withdrawal arrived, the registration not yet: the withdrawal is final all the same.
    withdrawn_only = EnterpriseFacts(withdrawn_on=DAY)
    given().when(schedule(enterprise=withdrawn_only)).refuses("enterprise-withdrawn")


def test_an_enterprise_not_heard_of_is_not_known_yet() -> None:
    refused = (
        given().when(schedule(enterprise=EnterpriseFacts())).refuses("enterprise-not-known-yet")
    )
    assert isinstance(refused, NotKnownYet)


def test_an_enrolment_in_another_module_is_not_enough() -> None:
    refused = given().when(schedule(module=2)).refuses("enrolment-not-known-yet")
    assert isinstance(refused, NotKnownYet)


def test_an_enterprise_with_no_enrolment_heard_of_is_not_known_to_be_enrolled_yet() -> None:
    registered_only = EnterpriseFacts(known=True, country="bo", region="santa_cruz")
    given().when(schedule(enterprise=registered_only)).refuses("enrolment-not-known-yet")


def test_a_trainer_not_heard_of_is_not_known_yet() -> None:
    refused = given().when(schedule(trainer=TrainerFacts())).refuses("trainer-not-known-yet")
    assert isinstance(refused, NotKnownYet)


def test_a_trainer_certified_for_other_modules_is_not_known_to_be_certified_yet() -> None:
    enrolled_in_m3 = EnterpriseFacts(
        known=True, country="bo", region="santa_cruz", modules=frozenset({1, 3})
    )
    refused = (
        given()
        .when(schedule(module=3, enterprise=enrolled_in_m3))
        .refuses("certification-not-known-yet")
    )
    assert isinstance(refused, NotKnownYet)


def test_a_final_refusal_comes_before_a_retryable_one() -> None:
    # Retrying cannot help a withdrawn enterprise, whatever else is missing.
    withdrawn = EnterpriseFacts(known=True, region="santa_cruz", withdrawn_on=DAY)
    given().when(schedule(enterprise=withdrawn, trainer=TrainerFacts())).refuses(
        "enterprise-withdrawn"
    )


# While the views are being rebuilt they may lack any fact, a withdrawal too.

REBUILDING = replace(ENROLLED_IN_M1, rebuilding=True)


def test_nothing_is_scheduled_on_views_being_rebuilt() -> None:
    refused = (
        given().when(schedule(enterprise=REBUILDING)).refuses("views-rebuilding-not-known-yet")
    )
    assert isinstance(refused, NotKnownYet)


def test_a_withdrawal_read_again_already_refuses_for_good() -> None:
    withdrawn = replace(REBUILDING, withdrawn_on=DAY)
    given().when(schedule(enterprise=withdrawn)).refuses("enterprise-withdrawn")


def test_no_visit_is_completed_on_views_being_rebuilt() -> None:
    refused = (
        given(scheduled)
        .when(complete(enterprise=REBUILDING))
        .refuses("views-rebuilding-not-known-yet")
    )
    assert isinstance(refused, NotKnownYet)


def test_a_cancelled_visit_is_refused_for_good_even_then() -> None:
    given(scheduled, cancelled).when(complete(enterprise=REBUILDING)).refuses(
        "no-completion-of-cancelled-visit"
    )


def test_a_cancellation_reads_no_view_and_goes_on_meanwhile() -> None:
    given(scheduled).when(cancel()).then(cancelled)


# Completion: not of a cancelled visit, nor before its scheduled day.


def test_a_visit_is_completed_with_its_improvements() -> None:
    given(scheduled).when(complete()).then(completed.model_copy(update={"improvements": [FIVE_S]}))


def test_no_completion_of_a_cancelled_visit() -> None:
    given(scheduled, cancelled).when(complete()).refuses("no-completion-of-cancelled-visit")


def test_a_visit_is_completed_once() -> None:
    given(scheduled, completed).when(complete()).refuses("visit-already-completed")


def test_no_completion_before_the_scheduled_day() -> None:
    the_day_before = DAY - dt.timedelta(days=1)
    given(scheduled).when(complete(completed_on=the_day_before)).refuses(
        "no-completion-before-scheduled-day"
    )


def test_a_completion_on_a_later_day_is_recorded() -> None:
    given(scheduled).when(complete(completed_on=DAY + dt.timedelta(days=3))).then_one()


def test_no_completion_dated_after_the_enterprise_withdrew() -> None:
    withdrawn = EnterpriseFacts(known=True, region="santa_cruz", withdrawn_on=DAY)
    given(scheduled).when(
        complete(completed_on=DAY + dt.timedelta(days=1), enterprise=withdrawn)
    ).refuses("enterprise-withdrawn")


def test_a_visit_that_took_place_before_the_withdrawal_is_recorded() -> None:
    withdrawn_later = EnterpriseFacts(
        known=True, region="santa_cruz", withdrawn_on=DAY + dt.timedelta(days=10)
    )
    given(scheduled).when(complete(enterprise=withdrawn_later)).then_one()


# Cancellation.


def test_a_visit_is_cancelled_with_its_reason() -> None:
    given(scheduled).when(cancel()).then(cancelled)


def test_a_visit_is_cancelled_once() -> None:
    given(scheduled, cancelled).when(cancel()).refuses("visit-already-cancelled")


def test_a_visit_that_took_place_is_not_cancelled() -> None:
    given(scheduled, completed).when(cancel()).refuses("no-cancellation-of-completed-visit")
