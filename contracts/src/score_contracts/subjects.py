"""NATS subject and JetStream stream naming.

Subjects are `score.<country>.<region>.<context>.<event_name>.v<major>` so that a chamber or
a downstream reader can be given `score.bo.santa_cruz.>` and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from score_contracts.events.base import Event
from score_contracts.reference import COUNTRY_CODE, NATIONAL, SLUG

CONTEXTS: Final = ("enrolment", "visits", "indicators", "notifications")


def subject_for(event: type[Event] | Event, country: str, region: str | None) -> str:
    """The subject an event is published on; `region=None` means `national`."""
    region = NATIONAL if region is None else region  # "" is a mistake, not `national`
    if not COUNTRY_CODE.match(country) or not SLUG.match(region):
        raise ValueError(f"bad subject tokens: country={country!r} region={region!r}")
    return f"score.{country}.{region}.{event.context}.{event.event_name}.v{event.major}"


@dataclass(frozen=True, slots=True)
class StreamSpec:
    """A JetStream stream owned by one producing context."""

    context: str
    name: str
    subjects: tuple[str, ...]


def stream_for(context: str) -> StreamSpec:
    if context not in CONTEXTS:
        raise ValueError(f"unknown context {context!r}")
    return StreamSpec(context, f"SCORE_{context.upper()}", (f"score.*.*.{context}.>",))


STREAMS: Final[dict[str, StreamSpec]] = {c: stream_for(c) for c in CONTEXTS}
