"""Pieces every service's HTTP API uses: the runtime as a dependency, `If-Match`, the
answer to a write, and business dates."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Header, Request
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from score_chassis.runtime import Runtime
from score_chassis.settings import DEFAULT_TIMEZONE
from score_chassis.store import Causation


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def _causation(request: Request) -> Causation:
    return Causation(correlation_id=getattr(request.state, "correlation_id", None))


CausationDep = Annotated[Causation, Depends(_causation)]


def _if_match(
    if_match: Annotated[
        str | None,
        Header(
            description="The version the client last saw; the write is refused with 412 "
            "if the resource is no longer at it.",
            examples=['"3"'],
        ),
    ] = None,
) -> int | None:
    if if_match is None:
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise RequestValidationError(
            [
                {
                    "loc": ("header", "if-match"),
                    "msg": 'must be a version number, e.g. "3"',
                    "type": "value_error",
                }
            ]
        )
    return int(raw)


IfMatchDep = Annotated[int | None, Depends(_if_match)]


class Written(BaseModel):
    """The answer to a write: the aggregate's id and its new version."""

    id: str
    version: int
    enrolment_id: str | None = Field(default=None, description="Set when an enrolment is made")


class Body(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


_programme_zone = ZoneInfo(DEFAULT_TIMEZONE)


def set_programme_timezone(name: str) -> None:
    """The zone whose calendar business dates follow (`SCORE_TIMEZONE`)."""
    global _programme_zone
    _programme_zone = ZoneInfo(name)


def today() -> dt.date:
    """Today in the programme's zone: 21:00 in La Paz is still today there, not tomorrow."""
    return dt.datetime.now(_programme_zone).date()


def _not_in_future(value: dt.date) -> dt.date:
    # A business date records what happened. One day of slack covers a client in a time
    # zone ahead of the programme's.
    if value > today() + dt.timedelta(days=1):
        raise ValueError("is in the future")
    return value


PastDate = Annotated[dt.date, AfterValidator(_not_in_future)]
