"""The CloudEvents 1.0 envelope (structured JSON mode) every event travels in."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, Literal, Protocol, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from score_contracts.events import BY_TYPE, Event

CONTENT_TYPE = "application/cloudevents+json"

Data = TypeVar("Data", bound=Event)
E = TypeVar("E", bound=Event)


class Envelope(BaseModel, Generic[Data]):
    """One event as published. No personal data, in the attributes or in `data` (ADR 011)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(description="Event id, a UUIDv7; also the Nats-Msg-Id header.")
    source: str = Field(description="/score/<country>/<context>")
    type: str = Field(description="org.ilo.score.<context>.<event_name>.v<major>")
    subject: str = Field(description="The aggregate: enterprise/<id>, trainer/<id> …")
    time: dt.datetime
    datacontenttype: Literal["application/json"] = "application/json"
    dataschema: str
    streamversion: int = Field(ge=1, description="Version of the event in its aggregate.")
    correlationid: str | None = None
    causationid: str | None = None
    # Serialized by its runtime class: an `Envelope[Event]` holding an `EnterpriseEnrolled`
    # must not be written out with the (empty) fields of `Event`.
    data: SerializeAsAny[Data]


class InvalidEvent(ValueError):
    """A message that is not a valid event of the catalogue; `field` names what is wrong
    (`data.workforce.women`, `type`, `time` … or `(message)` when it is not JSON at all)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class UnknownEventType(InvalidEvent):
    """The envelope is well formed but names a type this consumer does not know (a newer
    major version, say): a consumer skips it, or stops to be upgraded — its choice."""

    def __init__(self, event_type: str) -> None:
        super().__init__("type", f"unknown event type {event_type}")
        self.event_type = event_type


def parse_envelope(raw: bytes | str) -> Envelope[Event]:
    """Parse a structured-mode CloudEvent into an envelope with its typed payload.

    Raises `UnknownEventType` for a type outside the catalogue, `ValueError` for anything
    malformed (pydantic's ValidationError is a ValueError).
    """
    head = _Head.model_validate_json(raw)
    envelope = _ENVELOPES.get(head.type)
    if envelope is None:
        raise UnknownEventType(head.type)
    return envelope.model_validate_json(raw)


class Message(Protocol):
    """A NATS message, or anything else holding the body in `data` (nats-py's `Msg` does)."""

    @property
    def data(self) -> bytes: ...


@overload
def parse(message: bytes | str | Message) -> Envelope[Event]: ...
@overload
def parse(message: bytes | str | Message, expected: type[E]) -> Envelope[E]: ...
def parse(message: bytes | str | Message, expected: type[Event] | None = None) -> Envelope[Any]:
    """The event in `message`, validated against its type's model (the committed schemas are
    generated from it): attributes, and `data` with its typed payload.

    Raises `InvalidEvent` naming the first field that is wrong; `UnknownEventType` (one) for
    a type outside this version of the contracts; `InvalidEvent` on `type` too when
    `expected` is given and the event is of another type.
    """
    raw = message if isinstance(message, bytes | str) else message.data
    try:
        envelope = parse_envelope(raw)
    except UnknownEventType:
        raise
    except ValidationError as error:
        raise _invalid(error) from None
    if expected is not None and not isinstance(envelope.data, expected):
        raise InvalidEvent("type", f"{envelope.type}, not {expected.event_type()}")
    return envelope


def _invalid(error: ValidationError) -> InvalidEvent:
    first = error.errors(include_url=False)[0]
    if first["type"] == "json_invalid":
        return InvalidEvent("(message)", f"not JSON: {first['msg']}")
    field = ".".join(str(part) for part in first["loc"]) or "(message)"
    return InvalidEvent(field, first["msg"])


class _Head(BaseModel):
    model_config = ConfigDict(extra="ignore")
    specversion: Literal["1.0"]
    type: str


_ENVELOPES: dict[str, type[Envelope[Event]]] = {
    type_: Envelope[model]  # type: ignore[valid-type]
    for type_, model in BY_TYPE.items()
}
"""Each type's envelope, made once: parametrising `Envelope` costs a lookup per message."""

__all__ = [
    "CONTENT_TYPE",
    "Envelope",
    "InvalidEvent",
    "Message",
    "UnknownEventType",
    "ValidationError",
    "parse",
    "parse_envelope",
]
