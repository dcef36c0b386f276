"""A programme's history written as events, for the tests of what is counted from it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal
from itertools import count

from score_chassis.consumer import Handler
from score_chassis.database import Database
from score_contracts.envelope import Envelope
from score_contracts.events import (
    CaseStudyPublished,
    EnterpriseDetailsCorrected,
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    Event,
    Headcount,
    Improvement,
    ModuleCompleted,
    Money,
    ParticipantsTrained,
    TrainerCertified,
    TrainerRegistered,
    TrainingFeePaid,
    VisitCancelled,
    VisitCompleted,
    VisitScheduled,
)
from score_contracts.examples import example_envelope

PHASE_3 = (dt.date(2017, 11, 1), dt.date(2019, 11, 30))
BEFORE = dt.date(2016, 6, 1)
DURING = dt.date(2018, 6, 1)


class History:
    """Writes the programme's history as events, numbering each aggregate's versions."""

    def __init__(self) -> None:
        self.events: list[tuple[Event, int]] = []
        self._versions: Counter[str] = Counter()
        self._ids = count(1)

    def add(self, event: Event) -> Event:
        self._versions[event.aggregate_subject] += 1
        self.events.append((event, self._versions[event.aggregate_subject]))
        return event

    def next_id(self, prefix: str) -> str:
        """A new id, e.g. of an enterprise whose registration the history leaves out."""
        return f"{prefix}-{next(self._ids)}"

    def enterprise(
        self,
        region: str = "la_paz",
        women: int = 50,
        men: int = 50,
        on: dt.date = BEFORE,
        chamber: str = "CNI",
    ) -> str:
        enterprise_id = f"ent-{next(self._ids)}"
        self.add(
            EnterpriseRegistered(
                enterprise_id=enterprise_id,
                name="Empresa",
                tax_id="1",
                country="bo",
                region=region,
                sector="manufacturing",
                chamber=chamber,
                workforce=Headcount(women=women, men=men),
                registered_on=on,
            )
        )
        return enterprise_id

    def enrol(
        self,
        enterprise_id: str,
        module: int = 1,
        delivery: str = "direct",
        cost: str = "1000",
        on: dt.date = BEFORE,
    ) -> str:
        enrolment_id = f"enr-{next(self._ids)}"
        self.add(
            EnterpriseEnrolled(
                enterprise_id=enterprise_id,
                enrolment_id=enrolment_id,
                module=module,
                delivery=delivery,
                delivery_cost=Money(amount=cost),
                enrolled_on=on,
            )
        )
        return enrolment_id

    def train(
        self,
        enterprise_id: str,
        enrolment_id: str,
        managers: tuple[int, int] = (1, 1),
        workers: tuple[int, int] = (1, 1),
        module: int = 1,
        on: dt.date = BEFORE,
    ) -> None:
        self.add(
            ParticipantsTrained(
                enterprise_id=enterprise_id,
                enrolment_id=enrolment_id,
                module=module,
                trained_on=on,
                managers=Headcount(women=managers[0], men=managers[1]),
                workers=Headcount(women=workers[0], men=workers[1]),
            )
        )

    def trainer(self, sex: str, region: str = "la_paz", on: dt.date = BEFORE) -> str:
        trainer_id = f"tr-{next(self._ids)}"
        self.add(
            TrainerRegistered(
                trainer_id=trainer_id,
                name="Trainer",
                sex=sex,
                country="bo",
                region=region,
                organisation="CEPB",
                registered_on=on,
            )
        )
        return trainer_id

    def correct(
        self,
        enterprise_id: str,
        workforce: tuple[int, int] | None = None,
        chamber: str | None = None,
        sector: str | None = None,
    ) -> None:
        """Correct what is given of an enterprise's details (workforce as women, men)."""
        self.add(
            EnterpriseDetailsCorrected(
                enterprise_id=enterprise_id,
                workforce=Headcount(women=workforce[0], men=workforce[1]) if workforce else None,
                chamber=chamber,
                sector=sector,
            )
        )

    def pay(
        self,
        enterprise_id: str,
        enrolment_id: str,
        amount: str = "500",
        on: dt.date = BEFORE,
        payer: str = "enterprise",
    ) -> None:
        self.add(
            TrainingFeePaid(
                enterprise_id=enterprise_id,
                enrolment_id=enrolment_id,
                amount=Money(amount=amount),
                paid_on=on,
                payer=payer,
            )
        )

    def complete(
        self, enterprise_id: str, enrolment_id: str, module: int = 1, on: dt.date = BEFORE
    ) -> None:
        self.add(
            ModuleCompleted(
                enterprise_id=enterprise_id,
                enrolment_id=enrolment_id,
                module=module,
                completed_on=on,
            )
        )

    def publish_case_study(self, enterprise_id: str, on: dt.date = BEFORE) -> None:
        self.add(
            CaseStudyPublished(
                enterprise_id=enterprise_id,
                title="Caso",
                url="https://example.org/caso",
                published_on=on,
            )
        )

    def withdraw(self, enterprise_id: str, on: dt.date = BEFORE) -> None:
        self.add(EnterpriseWithdrawn(enterprise_id=enterprise_id, reason="closed", withdrawn_on=on))

    def certify(
        self,
        trainer_id: str,
        modules: tuple[int, ...] = (1,),
        level: str = "trainer",
        on: dt.date = BEFORE,
    ) -> None:
        self.add(
            TrainerCertified(
                trainer_id=trainer_id, modules=list(modules), level=level, certified_on=on
            )
        )

    def schedule_visit(
        self, enterprise_id: str, trainer_id: str, module: int = 1, on: dt.date = BEFORE
    ) -> str:
        visit_id = f"vis-{next(self._ids)}"
        self.add(
            VisitScheduled(
                visit_id=visit_id,
                enterprise_id=enterprise_id,
                trainer_id=trainer_id,
                module=module,
                scheduled_for=on,
            )
        )
        return visit_id

    def complete_visit(
        self,
        visit_id: str,
        enterprise_id: str,
        trainer_id: str,
        module: int = 1,
        improvements: int = 0,
        on: dt.date = BEFORE,
    ) -> None:
        """Record a visit done, with `improvements` improvements found on it."""
        self.add(
            VisitCompleted(
                visit_id=visit_id,
                enterprise_id=enterprise_id,
                trainer_id=trainer_id,
                module=module,
                completed_on=on,
                duration_hours=Decimal("2.5"),
                improvements=[
                    Improvement(area="5S", description=f"workspace {n} organised")
                    for n in range(1, improvements + 1)
                ],
            )
        )

    def cancel_visit(self, visit_id: str, enterprise_id: str, on: dt.date = BEFORE) -> None:
        self.add(
            VisitCancelled(
                visit_id=visit_id, enterprise_id=enterprise_id, reason="strike", cancelled_on=on
            )
        )

    def envelopes(self) -> list[Envelope[Event]]:
        return [example_envelope(event, stream_version=v) for event, v in self.events]

    async def project_into(
        self, db: Database, handler: Handler, order: list[int] | None = None
    ) -> None:
        """Apply the events, in `order` (by index) if given, with a consumer's `handler`."""
        order = order if order is not None else list(range(len(self.events)))
        async with db.transaction() as conn:
            for index in order:
                event, version = self.events[index]
                await handler(conn, example_envelope(event, stream_version=version))
