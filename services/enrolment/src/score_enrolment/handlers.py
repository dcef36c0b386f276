"""The routes of the enrolment service's commands: which decider, which stream and subject,
what each command learns before it is decided, what the enterprise list keeps, what it answers.

The chassis runs them (`score_chassis.commands`): load → fold → decide → append, with the
idempotency record and the enterprise list in the same transaction; a command to an
enterprise or trainer never registered is a 404 there. Commands learn here what their
aggregate cannot see for itself: the configured size range, another enterprise's tax id,
whether a trainer is registered.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Protocol

from score_chassis.commands import Outcome, Route, Work, routes_like
from score_chassis.store import RecordedEvent
from score_contracts.events import Event
from score_contracts.subjects import subject_for
from score_enrolment.bodies import Written
from score_enrolment.domain.enterprise import (
    CompleteModule,
    CorrectDetails,
    Enrol,
    Enterprise,
    PublishCaseStudy,
    RecordFeePayment,
    RecordTraining,
    RegisterEnterprise,
    SizeRange,
    Withdraw,
    enterprise,
)
from score_enrolment.domain.trainer import CertifyTrainer, RegisterTrainer, Trainer, trainer


class EnterpriseViews(Protocol):
    """The enrolment service's own read model: the enterprise list."""

    async def record(self, outcome: Outcome[Enterprise]) -> None:
        """Bring the enterprise's row to the state the append left it in; `Refused`
        (tax-id-registered-once, naming the holder) when its registration's tax id is another
        enterprise's in the country. The list, not the decider, keeps that rule: it spans
        aggregates, and its unique index settles two registrations at the same moment."""
        ...


class Located(Protocol):
    @property
    def country(self) -> str: ...
    @property
    def region(self) -> str: ...


def enterprise_stream(enterprise_id: str) -> str:
    return f"enterprise/{enterprise_id}"


def trainer_stream(trainer_id: str) -> str:
    return f"trainer/{trainer_id}"


def _subject(_command: object, state: Located, event: Event) -> str:
    # An aggregate's events are published under its own region, so that a chamber can be
    # given `score.<country>.<region>.>` and see exactly its enterprises and trainers.
    return subject_for(event, state.country, state.region)


def _of_enterprise(command: Any) -> str:
    return enterprise_stream(command.enterprise_id)


def _of_trainer(command: Any) -> str:
    return trainer_stream(command.trainer_id)


def _written(_command: object, outcome: Outcome[Any]) -> Written:
    state = outcome.state
    aggregate_id = getattr(state, "enterprise_id", None) or state.trainer_id
    return Written(id=aggregate_id, version=outcome.version)


def _enrolled(command: Enrol, outcome: Outcome[Enterprise]) -> Written:
    return Written(
        id=command.enterprise_id, version=outcome.version, enrolment_id=command.enrolment_id
    )


async def _listed(
    work: Work[EnterpriseViews], _command: object, outcome: Outcome[Enterprise]
) -> None:
    await work.views.record(outcome)


async def _trainer_known(work: Work[EnterpriseViews], command: RecordTraining) -> RecordTraining:
    if command.trainer_id is None:
        return command
    known = trainer.fold(e.payload() for e in await work.load(trainer_stream(command.trainer_id)))
    return replace(command, trainer_registered=known.registered)


def routes(size_range: SizeRange) -> dict[type, Route[Any, Any, Any, EnterpriseViews]]:
    """Every command of the service, with the size range the settings give."""

    async def registration(
        _work: Work[EnterpriseViews], command: RegisterEnterprise
    ) -> RegisterEnterprise:
        return replace(command, size_range=size_range)

    of_enterprise = routes_like(
        decider=enterprise,
        stream_of=_of_enterprise,
        subject_of=_subject,
        answer=_written,
        aggregate="enterprise",
        recorded=_listed,
    )
    of_trainer = routes_like(
        decider=trainer,
        stream_of=_of_trainer,
        subject_of=_subject,
        answer=_written,
        aggregate="trainer",
    )

    return {
        RegisterEnterprise: of_enterprise(creates=True, informed=registration),
        CorrectDetails: of_enterprise(),
        Enrol: of_enterprise(answer=_enrolled),
        RecordTraining: of_enterprise(informed=_trainer_known),
        RecordFeePayment: of_enterprise(),
        CompleteModule: of_enterprise(),
        Withdraw: of_enterprise(),
        PublishCaseStudy: of_enterprise(),
        RegisterTrainer: of_trainer(creates=True),
        CertifyTrainer: of_trainer(),
    }


def folded_enterprise(history: list[RecordedEvent]) -> Enterprise:
    return enterprise.fold(e.payload() for e in history)


def folded_trainer(history: list[RecordedEvent]) -> Trainer:
    return trainer.fold(e.payload() for e in history)
