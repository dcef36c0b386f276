"""The trainer's rules: registered once, certified per module at the trainer or expert level."""

from __future__ import annotations

import datetime as dt

from score_contracts.events import TrainerCertified, TrainerRegistered
from score_enrolment.domain.trainer import CertifyTrainer, Level, RegisterTrainer, trainer
from score_testing.decider import scenario

given = scenario(trainer)

WORKSHOP = dt.date(2017, 11, 20)
CYCLE_DONE = dt.date(2018, 2, 23)
registered = TrainerRegistered(
    trainer_id="tr-1",
    name="María Choque Mamani",
    sex="female",
    country="bo",
    region="santa_cruz",
    organisation="CAINCO",
    registered_on=WORKSHOP,
)


def certified(*modules: int, level: Level = "trainer") -> TrainerCertified:
    return TrainerCertified(
        trainer_id="tr-1", modules=list(modules), level=level, certified_on=CYCLE_DONE
    )


def certify(*modules: int, level: Level = "trainer", on: dt.date = CYCLE_DONE) -> CertifyTrainer:
    return CertifyTrainer(trainer_id="tr-1", modules=modules, level=level, certified_on=on)


def register() -> RegisterTrainer:
    return RegisterTrainer(**registered.model_dump())


def test_a_trainer_is_registered() -> None:
    given().when(register()).then(registered)


def test_a_registered_trainer_is_certified_for_modules() -> None:
    given(registered).when(certify(2, 1)).then(certified(1, 2))


def test_a_certification_is_not_dated_before_registration() -> None:
    early = certify(1, on=WORKSHOP - dt.timedelta(days=1))
    given(registered).when(early).invalid("certified_on")


def test_a_certification_already_held_is_not_given_again() -> None:
    given(registered, certified(1, 2)).when(certify(2)).refuses("already-certified")


def test_an_expert_holds_what_a_trainer_certification_gives() -> None:
    given(registered, certified(1, level="expert")).when(certify(1)).refuses("already-certified")


def test_a_trainer_becomes_an_expert() -> None:
    given(registered, certified(1)).when(certify(1, level="expert")).then(
        certified(1, level="expert")
    )


def test_a_certification_adding_a_module_is_given() -> None:
    given(registered, certified(1)).when(certify(1, 5)).then(certified(1, 5))


def test_the_state_keeps_the_highest_level_per_module() -> None:
    state = trainer.fold([registered, certified(1, 2, level="expert"), certified(2, 3)])
    assert {m: c.level for m, c in state.certifications.items()} == {
        1: "expert",
        2: "expert",
        3: "trainer",
    }
