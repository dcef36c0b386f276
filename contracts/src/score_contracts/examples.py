"""One realistic example of every event in the catalogue, for tests and the documentation.

The examples tell one story, in Phase III of the programme in Bolivia: a garment maker in
Santa Cruz registers with the regional chamber, enrols in Module 1, sends managers and
workers to the workshop, pays its fee, is visited by a certified trainer and completes the
module; the region's first trained enterprise is a milestone the chamber is told about.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Final, TypeVar, cast

from score_contracts.envelope import Envelope
from score_contracts.events import (
    CATALOGUE,
    CaseStudyPublished,
    EnterpriseDetailsCorrected,
    EnterpriseEnrolled,
    EnterpriseRegistered,
    EnterpriseWithdrawn,
    Event,
    Headcount,
    Improvement,
    MilestoneReached,
    ModuleCompleted,
    Money,
    NotificationDelivered,
    NotificationFailed,
    ParticipantsTrained,
    TrainerCertified,
    TrainerRegistered,
    TrainingFeePaid,
    VisitCancelled,
    VisitCompleted,
    VisitScheduled,
)
from score_contracts.ids import uuid7
from score_contracts.reference import DEFAULT_COUNTRY

E = TypeVar("E", bound=Event)

# Fixed ids, so that the generated documentation does not change from one run to the next.
ENTERPRISE_ID: Final = "0161f676-3f00-7d49-940b-358c6cd86da8"
ENROLMENT_ID: Final = "0161fb9c-9b7b-7e11-a6db-c205db44a7fc"
TRAINER_ID: Final = "016200c2-f7f6-7174-96e0-3250e68ed9a1"
VISIT_ID: Final = "016205e9-5471-7222-a382-c7b6d71f34b5"
MILESTONE_ID: Final = "01620b0f-b0ec-78db-b31f-de5083538df9"
NOTIFICATION_ID: Final = "01621036-0d67-7f33-8dda-4ba1c48827aa"
SUBSCRIPTION_ID: Final = "0162155c-69e2-7417-b29d-a33d90b116d9"

REGION: Final = "santa_cruz"
CHAMBER: Final = "CAINCO"
"""Cámara de Industria, Comercio, Servicios y Turismo de Santa Cruz."""
PHASE: Final = "phase_iii"

_EXAMPLES: Final[dict[type[Event], Event]] = {
    type(event): event
    for event in (
        EnterpriseRegistered(
            enterprise_id=ENTERPRISE_ID,
            name="Confecciones Chiquitanas S.R.L.",
            tax_id="1028547021",
            country=DEFAULT_COUNTRY,
            region=REGION,
            sector="Textiles y confecciones",
            chamber=CHAMBER,
            workforce=Headcount(women=46, men=19),
            registered_on=dt.date(2018, 3, 5),
        ),
        EnterpriseDetailsCorrected(
            enterprise_id=ENTERPRISE_ID,
            workforce=Headcount(women=51, men=19),
            corrected_on=dt.date(2018, 9, 3),
        ),
        EnterpriseEnrolled(
            enterprise_id=ENTERPRISE_ID,
            enrolment_id=ENROLMENT_ID,
            module=1,
            delivery="direct",
            delivery_cost=Money(amount="5600.00"),
            enrolled_on=dt.date(2018, 3, 12),
        ),
        ParticipantsTrained(
            enterprise_id=ENTERPRISE_ID,
            enrolment_id=ENROLMENT_ID,
            module=1,
            trained_on=dt.date(2018, 4, 10),
            trainer_id=TRAINER_ID,
            managers=Headcount(women=1, men=1),
            workers=Headcount(women=2, men=0),
        ),
        TrainingFeePaid(
            enterprise_id=ENTERPRISE_ID,
            enrolment_id=ENROLMENT_ID,
            amount=Money(amount="2800.00"),
            paid_on=dt.date(2018, 4, 16),
            payer="enterprise",
        ),
        ModuleCompleted(
            enterprise_id=ENTERPRISE_ID,
            enrolment_id=ENROLMENT_ID,
            module=1,
            completed_on=dt.date(2018, 7, 2),
        ),
        EnterpriseWithdrawn(
            enterprise_id=ENTERPRISE_ID,
            reason="Cambio de propietarios; la nueva gerencia pospone los módulos 2 a 5.",
            withdrawn_on=dt.date(2019, 2, 18),
        ),
        CaseStudyPublished(
            enterprise_id=ENTERPRISE_ID,
            title="Confecciones Chiquitanas: 5S en el almacén de telas",
            url="https://score.example.org/bo/casos/confecciones-chiquitanas",
            published_on=dt.date(2018, 10, 15),
        ),
        TrainerRegistered(
            trainer_id=TRAINER_ID,
            name="María Choque Mamani",
            sex="female",
            country=DEFAULT_COUNTRY,
            region=REGION,
            organisation=CHAMBER,
            registered_on=dt.date(2017, 11, 20),
        ),
        TrainerCertified(
            trainer_id=TRAINER_ID,
            modules=[1, 2],
            level="trainer",
            certified_on=dt.date(2018, 2, 23),
        ),
        VisitScheduled(
            visit_id=VISIT_ID,
            enterprise_id=ENTERPRISE_ID,
            trainer_id=TRAINER_ID,
            module=1,
            scheduled_for=dt.date(2018, 5, 8),
        ),
        VisitCompleted(
            visit_id=VISIT_ID,
            enterprise_id=ENTERPRISE_ID,
            trainer_id=TRAINER_ID,
            module=1,
            completed_on=dt.date(2018, 5, 8),
            duration_hours=Decimal("3.5"),
            improvements=[
                Improvement(
                    area="Almacén de telas",
                    description="5S: rollos clasificados por color y etiquetados; "
                    "pasillo despejado hacia la salida de emergencia.",
                ),
                Improvement(
                    area="Comunicación interna",
                    description="Pizarra de avisos y buzón de sugerencias junto al comedor.",
                ),
            ],
        ),
        VisitCancelled(
            visit_id=VISIT_ID,
            enterprise_id=ENTERPRISE_ID,
            reason="Paro de transporte en Santa Cruz de la Sierra.",
            cancelled_on=dt.date(2018, 5, 7),
        ),
        MilestoneReached(
            milestone_id=MILESTONE_ID,
            indicator="enterprises_trained",
            scope=REGION,
            threshold=Decimal("1"),
            value=Decimal("1"),
            reached_at=dt.datetime(2018, 4, 10, 21, 14, 3, tzinfo=dt.UTC),
            phase=PHASE,
        ),
        NotificationDelivered(
            notification_id=NOTIFICATION_ID,
            milestone_id=MILESTONE_ID,
            subscription_id=SUBSCRIPTION_ID,
            chamber=CHAMBER,
            channel="webhook",
            attempts=1,
        ),
        NotificationFailed(
            notification_id=NOTIFICATION_ID,
            milestone_id=MILESTONE_ID,
            subscription_id=SUBSCRIPTION_ID,
            chamber=CHAMBER,
            channel="email",
            attempts=8,
            last_error="550 5.1.1 mailbox unavailable",
        ),
    )
}


def example(cls: type[E]) -> E:
    """A valid, realistic instance of the event type `cls` (a fresh copy each call)."""
    event = _EXAMPLES[cls].model_copy(deep=True)
    assert isinstance(event, cls)
    return event


def examples() -> list[Event]:
    """One example of every event type, in catalogue order."""
    return [example(cls) for cls in CATALOGUE]


EXAMPLE_PORTS: dict[str, int] = {"enrolment": 8101, "visits": 8102, "indicators": 8103}
EXAMPLE_PORTS["notifications"] = 8104
"""The port `score up` gives each context's service, for the examples' `dataschema`."""


def example_envelope(
    event: E,
    *,
    event_id: str | None = None,
    stream_version: int = 1,
    time: dt.datetime | None = None,
    correlation_id: str | None = None,
    causation_id: str | None = None,
    country: str = DEFAULT_COUNTRY,
    base_url: str | None = None,
) -> Envelope[E]:
    """`event` wrapped as it is published: a new UUIDv7 id and the current time unless given,
    by the service at `base_url` (by default where `score up` runs the context's)."""
    # Parametrised with the event's own class, as `parse_envelope` does, so that the two
    # compare equal and the envelope's schema is the event's.
    envelope_type = cast("type[Envelope[E]]", Envelope[type(event)])  # type: ignore[misc]
    return envelope_type(
        id=event_id or uuid7(),
        source=f"/score/{country}/{event.context}",
        type=event.event_type(),
        subject=event.aggregate_subject,
        time=time or dt.datetime.now(dt.UTC),
        dataschema=event.dataschema(base_url or f"http://localhost:{EXAMPLE_PORTS[event.context]}"),
        streamversion=stream_version,
        correlationid=correlation_id,
        causationid=causation_id,
        data=event,
    )
