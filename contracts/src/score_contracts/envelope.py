"""The CloudEvents 1.0 envelope (structured JSON mode) every event travels in."""

from __future__ import annotations

import datetime as dt
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationError

from score_contracts.events import BY_TYPE, Event

CONTENT_TYPE = "application/cloudevents+json"

Data = TypeVar("Data", bound=Event)


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


class UnknownEventType(ValueError):
    """The envelope is well formed but names a type this consumer does not know."""


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


class _Head(BaseModel):
    model_config = ConfigDict(extra="ignore")
    specversion: Literal["1.0"]
    type: str


_ENVELOPES: dict[str, type[Envelope[Event]]] = {
    type_: Envelope[model]  # type: ignore[valid-type]
    for type_, model in BY_TYPE.items()
}
"""Each type's envelope, made once: parametrising `Envelope` costs a lookup per message."""

__all__ = ["CONTENT_TYPE", "Envelope", "UnknownEventType", "ValidationError", "parse_envelope"]
