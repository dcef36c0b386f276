"""Events of the indicators context."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar

from score_contracts.events.base import Event, Id, Text


class MilestoneReached(Event):
    """An indicator crossed a threshold in a scope (`national` or a region), once ever."""

    context: ClassVar[str] = "indicators"
    aggregate: ClassVar[str] = "milestone"
    event_name: ClassVar[str] = "milestone_reached"
    milestone_id: Id
    indicator: Text
    scope: Text
    threshold: Decimal
    value: Decimal
    reached_at: dt.datetime
    phase: Text | None = None
