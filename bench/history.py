"""The made-up programme history the pipeline scenarios (B4, B5, B6) push through.

Each enterprise has three events, as in the programme: registered, enrolled in Module 1,
trained. They come as the enrolment service appends them (`NewEvent`s, for the store and its
outbox) or as JetStream carries them (CloudEvents bodies, for publishing straight to a
stream), both built from the published event models, so the indicators' projection does the
work it does for real events.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

from score_chassis.relay import envelope_json, headers_for
from score_chassis.store import NewEvent, RecordedEvent
from score_contracts.events import (
    EnterpriseEnrolled,
    EnterpriseRegistered,
    Event,
    Headcount,
    Money,
    ParticipantsTrained,
)
from score_contracts.ids import uuid7
from score_contracts.subjects import subject_for

SOURCE = "/score/bo/enrolment"
REGIONS = ("la_paz", "cochabamba", "santa_cruz", "oruro", "potosi", "chuquisaca", "tarija")
EVENTS_PER_ENTERPRISE = 3


@dataclass(frozen=True, slots=True)
class Message:
    """One event as JetStream carries it."""

    subject: str
    body: bytes
    headers: dict[str, str]


def enterprise_events(n: int) -> tuple[str, list[NewEvent]]:
    """The stream id and the three events of the `n`-th enterprise."""
    enterprise_id = f"bench-{n}"
    region = REGIONS[n % len(REGIONS)]
    day = dt.date(2017, 1, 1) + dt.timedelta(days=n % 2000)
    enrolment_id = f"bench-{n}-m1"
    events: list[Event] = [
        EnterpriseRegistered(
            enterprise_id=enterprise_id,
            name=f"Bench {n}",
            tax_id=f"bench-{n}",
            country="bo",
            region=region,
            sector="manufacturing",
            chamber="CNI",
            workforce=Headcount(women=40 + n % 20, men=60 - n % 20),
            registered_on=day,
        ),
        EnterpriseEnrolled(
            enterprise_id=enterprise_id,
            enrolment_id=enrolment_id,
            module=1,
            delivery="direct",
            delivery_cost=Money(amount="4500"),
            enrolled_on=day,
        ),
        ParticipantsTrained(
            enterprise_id=enterprise_id,
            enrolment_id=enrolment_id,
            module=1,
            trained_on=day,
            managers=Headcount(women=1, men=1),
            workers=Headcount(women=2, men=1),
        ),
    ]
    return f"enterprise/{enterprise_id}", [
        NewEvent(event, subject_for(event, "bo", region)) for event in events
    ]


def enterprises_for(events: int) -> int:
    """How many enterprises make at least `events` events."""
    return -(-events // EVENTS_PER_ENTERPRISE)


def messages(count: int, *, first: int = 0) -> Iterator[Message]:
    """`count` events of enterprises `first`, `first + 1` … as the relay would publish them."""
    now = dt.datetime.now(dt.UTC)
    made = 0
    n = first
    while made < count:
        stream_id, new_events = enterprise_events(n)
        for version, new in enumerate(new_events, start=1):
            if made == count:
                return
            recorded = RecordedEvent(
                position=0,
                event_id=uuid7(),
                stream_id=stream_id,
                version=version,
                type=new.event.event_type(),
                data=new.event.model_dump(mode="json"),
                metadata={"source": SOURCE, "subject": new.subject},
                occurred_at=now,
            )
            yield Message(new.subject, envelope_json(recorded), headers_for(recorded))
            made += 1
        n += 1
