"""The enterprise's rules, each as the sentence a programme officer would say."""

from __future__ import annotations

import datetime as dt

from score_chassis.testing.decider import scenario
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    Headcount,
    Money,
    ParticipantsTrained,
)
from score_enrolment.domain import Enrol, RecordTraining, RegisterEnterprise, SizeRange, enterprise

given = scenario(enterprise)

DAY = dt.date(2017, 3, 1)
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
withdrawn = EnterpriseWithdrawn(enterprise_id="ent-1", reason="closed", withdrawn_on=DAY)


def register(**changes: object) -> RegisterEnterprise:
    fields: dict[str, object] = {
        **registered.model_dump(exclude={"size_exception_reason"}),
        "workforce": registered.workforce,
    }
    fields.update(changes)
    return RegisterEnterprise(**fields)  # type: ignore[arg-type]


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
        "trained_on": DAY + dt.timedelta(days=10),
        "managers": Headcount(women=1, men=1),
        "workers": Headcount(women=2, men=0),
    }
    fields.update(changes)
    return RecordTraining(**fields)  # type: ignore[arg-type]


def test_an_enterprise_in_the_size_range_is_registered() -> None:
    given().when(register()).then(registered)


def test_an_enterprise_is_registered_once() -> None:
    given(registered).when(register()).refuses("already-registered")


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


def test_an_enrolment_is_not_dated_before_registration() -> None:
    early = enrol(1, enrolled_on=DAY - dt.timedelta(days=1))
    given(registered).when(early).invalid("enrolled_on")


def test_a_training_is_recorded_for_an_enrolment_with_its_module() -> None:
    given(registered, enrolled_m1).when(train()).then(
        ParticipantsTrained(
            enterprise_id="ent-1",
            enrolment_id="enr-1",
            module=1,
            trained_on=DAY + dt.timedelta(days=10),
            managers=Headcount(women=1, men=1),
            workers=Headcount(women=2, men=0),
        )
    )


def test_a_training_needs_an_existing_enrolment() -> None:
    given(registered).when(train("enr-404")).refuses("training-needs-enrolment")


def test_a_training_is_not_dated_before_its_enrolment() -> None:
    given(registered, enrolled_m1).when(train(trained_on=DAY - dt.timedelta(days=1))).invalid(
        "trained_on"
    )


def test_a_training_has_participants() -> None:
    nobody = train(managers=Headcount(women=0, men=0), workers=Headcount(women=0, men=0))
    given(registered, enrolled_m1).when(nobody).invalid("participants")
