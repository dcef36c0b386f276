"""Events of the notifications context: what became of a milestone notification."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from score_contracts.events.base import Event, Id, Text


class NotificationEvent(Event):
    context: ClassVar[str] = "notifications"
    aggregate: ClassVar[str] = "notification"
    notification_id: Id
    milestone_id: Id
    subscription_id: Id
    chamber: Text
    channel: Literal["webhook", "email"]
    attempts: Annotated[int, Field(ge=1)]


class NotificationDelivered(NotificationEvent):
    event_name: ClassVar[str] = "notification_delivered"
    last_error: Text | None = None


class NotificationFailed(NotificationEvent):
    event_name: ClassVar[str] = "notification_failed"
    last_error: Text | None = None
