"""Request bodies and answers of the visits API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, Field

from score_chassis.http.inputs import Body, Line, Paragraphs, PastDate, PlannedDate, today
from score_contracts.events import Improvement
from score_contracts.events.base import Id, ModuleNumber
from score_visits.domain import Visit

# Request bodies.


class ImprovementBody(Body):
    area: Line = Field(examples=["Almacén de telas"])
    description: Paragraphs = Field(examples=["5S: rollos clasificados por color y etiquetados"])


class ScheduleVisitBody(Body):
    enterprise_id: Id
    trainer_id: Id
    module: ModuleNumber = Field(description="The module (1–5) whose follow-up this visit is")
    scheduled_for: PlannedDate = Field(
        default_factory=today,
        description="Default: today; at most `SCORE_PLANNING_HORIZON_DAYS` ahead (366)",
    )


class CompletionBody(Body):
    completed_on: PastDate = Field(default_factory=today, description="Default: today")
    duration_hours: Annotated[Decimal, Field(gt=0, le=24, decimal_places=2)] = Field(
        examples=["3.5"]
    )
    improvements: list[ImprovementBody] = Field(
        default_factory=list,
        max_length=100,
        description="What was improved in the factory: 5S in a workspace, a visible notice "
        "board and suggestion box, a reorganised warehouse …",
    )


class CancellationBody(Body):
    reason: Line
    cancelled_on: PastDate = Field(default_factory=today, description="Default: today")


# Answers.

VisitStatus = Literal["scheduled", "completed", "cancelled"]


class VisitSummary(BaseModel):
    id: str
    version: int
    enterprise_id: str
    trainer_id: str
    module: int
    status: VisitStatus
    scheduled_for: dt.date
    completed_on: dt.date | None = None
    cancelled_on: dt.date | None = None
    improvements: int = Field(description="How many improvements were recorded")


class VisitList(BaseModel):
    enterprise_id: str
    visits: list[VisitSummary]


class VisitView(BaseModel):
    id: str
    version: int
    enterprise_id: str
    trainer_id: str
    module: int
    status: VisitStatus
    scheduled_for: dt.date
    completed_on: dt.date | None = None
    duration_hours: Decimal | None = None
    improvements: list[Improvement] = []
    cancelled_on: dt.date | None = None
    cancellation_reason: str | None = None

    @classmethod
    def of(cls, state: Visit, version: int) -> VisitView:
        assert state.status != "new" and state.scheduled_for is not None
        return cls(
            id=state.visit_id,
            version=version,
            enterprise_id=state.enterprise_id,
            trainer_id=state.trainer_id,
            module=state.module,
            status=state.status,
            scheduled_for=state.scheduled_for,
            completed_on=state.completed_on,
            duration_hours=state.duration_hours,
            improvements=list(state.improvements),
            cancelled_on=state.cancelled_on,
            cancellation_reason=state.cancellation_reason,
        )
