"""Events of the visits context: in-factory consultancy visits by trainers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, ClassVar

from pydantic import Field

from score_contracts.events.base import Event, Id, ModuleNumber, Payload, Text


class Improvement(Payload):
    """A concrete improvement found on a visit: 5S in a workspace, a notice board …"""

    area: Text
    description: Annotated[str, Field(min_length=1, max_length=2000)]


class VisitEvent(Event):
    context: ClassVar[str] = "visits"
    aggregate: ClassVar[str] = "visit"
    visit_id: Id
    enterprise_id: Id


class VisitScheduled(VisitEvent):
    event_name: ClassVar[str] = "visit_scheduled"
    trainer_id: Id
    module: ModuleNumber
    scheduled_for: dt.date


class VisitCompleted(VisitEvent):
    event_name: ClassVar[str] = "visit_completed"
    trainer_id: Id
    module: ModuleNumber
    completed_on: dt.date
    duration_hours: Annotated[Decimal, Field(gt=0, le=24, decimal_places=2)]
    improvements: Annotated[list[Improvement], Field(max_length=100)] = []


class VisitCancelled(VisitEvent):
    event_name: ClassVar[str] = "visit_cancelled"
    reason: Text
    cancelled_on: dt.date
