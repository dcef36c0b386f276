"""Pieces every service's HTTP API uses: the runtime as a dependency, `If-Match`, the
answer to a write, and business dates."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, Header, Path, Request
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from score_chassis.errors import BEYOND_ANY_VERSION
from score_chassis.http.problems import invalid_input
from score_chassis.runtime import Runtime
from score_chassis.settings import (
    DEFAULT_PLANNING_HORIZON_DAYS,
    DEFAULT_PROGRAMME_START,
    DEFAULT_TIMEZONE,
    ServiceSettings,
)
from score_chassis.store import Causation
from score_contracts.events.base import ID_PATTERN
from score_contracts.reference import ALL_REGIONS, COUNTRIES, check_country, check_region


async def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def causation_of(request: Request) -> Causation:
    """What a command of this request was caused by: the request itself (its id, sent back
    in `X-Request-ID`), in the chain its correlation id names."""
    return Causation(
        correlation_id=getattr(request.state, "correlation_id", None),
        causation_id=getattr(request.state, "request_id", None),
    )


_VERSION = re.compile(r'(?:W/)?"([0-9]+)"|([0-9]+)', re.ASCII)
_LONGEST_VERSION = 18
"""Digits of the highest version any aggregate could be at (well within a 64-bit integer)."""


IfMatch = Annotated[
    str | None,
    Header(
        description="The version the client last saw; the write is refused with 412 "
        "if the resource is no longer at it.",
        examples=['"3"'],
    ),
]
"""The If-Match header, as a parameter of a dependency (`expected_version` reads it)."""


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match header names, if any; a 422 naming the header if it is not
    one."""
    if if_match is None:
        return None
    matched = _VERSION.fullmatch(if_match.strip())
    if matched is None:
        raise invalid_input(
            "header", "if-match", 'must be a version number, e.g. "3"', rule="version-number"
        )
    digits = (matched.group(1) or matched.group(2)).lstrip("0") or "0"
    if len(digits) > _LONGEST_VERSION:
        # Well formed, but no aggregate is at such a version: the precondition fails (after
        # the 404 of an unknown aggregate, decided where the aggregate is loaded).
        return BEYOND_ANY_VERSION
    return int(digits)


def path_id(description: str) -> Any:
    """A path parameter holding an aggregate's id, as every service validates it."""
    return Path(description=description, min_length=1, max_length=64, pattern=ID_PATTERN)


class Written(BaseModel):
    """The answer to a write: the aggregate's id and its new version. A service whose writes
    say more (the id of a child they made) answers with a model of its own."""

    id: str
    version: int


class Body(BaseModel):
    """Base of request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


@dataclass(frozen=True, slots=True)
class ProgrammeCalendar:
    """The calendar business dates follow: the programme's time zone, the day it began (no
    record predates it), and how far ahead a date that plans something may lie."""

    zone: ZoneInfo = ZoneInfo(DEFAULT_TIMEZONE)
    starts_on: dt.date = DEFAULT_PROGRAMME_START
    horizon: dt.timedelta = dt.timedelta(days=DEFAULT_PLANNING_HORIZON_DAYS)

    @classmethod
    def of(cls, settings: ServiceSettings) -> ProgrammeCalendar:
        return cls(
            ZoneInfo(settings.timezone),
            settings.programme_start,
            dt.timedelta(days=settings.planning_horizon_days),
        )

    def today(self) -> dt.date:
        """Today in the programme's zone: 21:00 in La Paz is still today there."""
        return dt.datetime.now(self.zone).date()


# Per request, not per process: the app sets it around each request it serves (two apps in
# one process, as in the tests, each keep their own), and code outside a request sees the
# default calendar.
DEFAULT_CALENDAR = ProgrammeCalendar()
_calendar: ContextVar[ProgrammeCalendar] = ContextVar(
    "programme_calendar", default=DEFAULT_CALENDAR
)


@contextlib.contextmanager
def programme_calendar(calendar: ProgrammeCalendar) -> Iterator[ProgrammeCalendar]:
    """Business dates follow `calendar` within the block."""
    token = _calendar.set(calendar)
    try:
        yield calendar
    finally:
        _calendar.reset(token)


def today() -> dt.date:
    """Today in the programme's zone."""
    return _calendar.get().today()


def refusal(rule: str, reason: str) -> PydanticCustomError:
    """A validation error whose type is `rule`, which the problem details name."""
    return PydanticCustomError(rule, "{reason}", {"reason": reason})


def _a_date(value: object) -> object:
    # pydantic would read an integer as days since 1970: 0 would be 1970-01-01.
    if isinstance(value, dt.datetime) or not isinstance(value, str | dt.date):
        raise refusal("date-type", "must be a date written as YYYY-MM-DD")
    return value


def _in_the_programme(value: dt.date) -> dt.date:
    calendar = _calendar.get()
    if value < calendar.starts_on:
        raise refusal(
            "date-before-programme", f"is before the programme began ({calendar.starts_on})"
        )
    return value


def _not_in_future(value: dt.date) -> dt.date:
    # A business date records what happened. One day of slack covers a client in a time
    # zone ahead of the programme's.
    if value > today() + dt.timedelta(days=1):
        raise refusal("date-in-future", "is in the future")
    return value


def _within_horizon(value: dt.date) -> dt.date:
    horizon = _calendar.get().horizon
    if value > today() + horizon:
        raise refusal("date-beyond-horizon", f"is more than {horizon.days} days ahead of today")
    return value


PastDate = Annotated[
    dt.date,
    BeforeValidator(_a_date),
    AfterValidator(_in_the_programme),
    AfterValidator(_not_in_future),
]
"""The day something happened: from the programme's first day to today."""

PlannedDate = Annotated[
    dt.date,
    BeforeValidator(_a_date),
    AfterValidator(_in_the_programme),
    AfterValidator(_within_horizon),
]
"""The day something is planned for: from the programme's first day to the planning horizon."""


# Text in request bodies. The patterns put the rule in the OpenAPI document; the validators
# word the error.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_BUT_LINE_BREAKS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _no_control_characters(pattern: re.Pattern[str]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if (found := pattern.search(value)) is not None:
            raise refusal(
                "no-control-characters",
                f"holds the control character U+{ord(found.group()):04X}",
            )
        return value

    return check


Line = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    Field(json_schema_extra={"pattern": r"^[^\u0000-\u001f\u007f-\u009f]*$"}),
    AfterValidator(_no_control_characters(_CONTROL)),
]
"""One line of text (a name, a sector, a reason): no control characters."""

Paragraphs = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    Field(
        json_schema_extra={"pattern": r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"}
    ),
    AfterValidator(_no_control_characters(_CONTROL_BUT_LINE_BREAKS)),
]
"""Longer text (a description): line breaks and tabs, but no other control characters."""


def _known_country(country: str) -> str:
    try:
        return check_country(country)
    except ValueError as error:
        raise refusal("unknown-country", str(error)) from None


def known_region(country: str, region: str) -> str:
    """`region` if it is one of `country`'s; a validation error naming the rule otherwise."""
    try:
        return check_region(country, region)
    except ValueError as error:
        raise refusal("unknown-region", str(error)) from None


def queried_region(country: str, region: str) -> str:
    """`region` as a query names it: one of `country`'s, or a 422 naming the query parameter."""
    try:
        return check_region(country, region)
    except ValueError as error:
        raise invalid_input("query", "region", str(error), rule="unknown-region") from None


KnownCountry = Annotated[
    str,
    Field(max_length=2, json_schema_extra={"enum": list(COUNTRIES)}),
    AfterValidator(_known_country),
]
"""A country the programme's regions are known for (ISO 3166-1 alpha-2, lower case)."""

RegionSlug = Annotated[
    str, Field(max_length=64, json_schema_extra={"enum": list(ALL_REGIONS)}, examples=["la_paz"])
]
"""A region slug; whether it is a region of the body's country is checked with the country."""
