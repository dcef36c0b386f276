"""A programme's history written as events, for the tests of what is counted from it."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from itertools import count

from score_chassis.consumer import Handler
from score_chassis.database import Database
from score_contracts.envelope import Envelope
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    Headcount,
    Money,
    ParticipantsTrained,
    TrainerRegistered,
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
