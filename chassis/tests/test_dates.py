"""Business dates follow the programme's calendar, not the server's."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter, ValidationError

from score_chassis.http.inputs import (
    PastDate,
    PlannedDate,
    ProgrammeCalendar,
    programme_calendar,
    today,
)
from score_chassis.settings import ServiceSettings

PAST = TypeAdapter(PastDate)
PLANNED = TypeAdapter(PlannedDate)


def rule_of(error: pytest.ExceptionInfo[ValidationError]) -> str:
    return error.value.errors()[0]["type"]


@pytest.mark.parametrize("name", ["America/La_Paz", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_today_is_the_date_in_the_programme_zone(name: str) -> None:
    with programme_calendar(ProgrammeCalendar(zone=ZoneInfo(name))):
        assert today() == dt.datetime.now(ZoneInfo(name)).date()


def test_a_business_date_may_be_a_day_ahead_of_the_programme_but_not_two() -> None:
    # UTC-11: often a day behind the server
    with programme_calendar(ProgrammeCalendar(zone=ZoneInfo("Pacific/Pago_Pago"))):
        assert PAST.validate_python(today() + dt.timedelta(days=1))
        with pytest.raises(ValidationError) as refused:
            PAST.validate_python(today() + dt.timedelta(days=2))
        assert rule_of(refused) == "date-in-future"


def test_outside_a_block_the_calendar_is_the_default_again() -> None:
    kiritimati = ProgrammeCalendar(zone=ZoneInfo("Pacific/Kiritimati"))
    with programme_calendar(kiritimati):
        pass
    assert today() == dt.datetime.now(ZoneInfo("America/La_Paz")).date()


@pytest.mark.parametrize("day", ["0001-01-01", "2012-12-31"])
def test_no_business_date_predates_the_programme(day: str) -> None:
    with pytest.raises(ValidationError) as refused:
        PAST.validate_python(day)
    assert rule_of(refused) == "date-before-programme"
    assert "2013-01-01" in refused.value.errors()[0]["msg"]
    assert PAST.validate_python("2013-01-01") == dt.date(2013, 1, 1)


def test_the_programme_start_is_configured() -> None:
    later = ProgrammeCalendar(starts_on=dt.date(2020, 1, 1))
    with programme_calendar(later), pytest.raises(ValidationError):
        PAST.validate_python("2019-06-01")
    assert ServiceSettings(programme_start="2016-03-01").programme_start == dt.date(2016, 3, 1)


@pytest.mark.parametrize("value", [0, 20240101, 1.5, True, None])
def test_a_date_is_written_as_a_date(value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        PAST.validate_python(value)
    assert rule_of(refused) == "date-type"


def test_a_planned_date_may_lie_ahead_up_to_the_horizon() -> None:
    with programme_calendar(ProgrammeCalendar(horizon=dt.timedelta(days=30))):
        assert PLANNED.validate_python(today() + dt.timedelta(days=30))
        with pytest.raises(ValidationError) as refused:
            PLANNED.validate_python(today() + dt.timedelta(days=31))
        assert rule_of(refused) == "date-beyond-horizon"
    with pytest.raises(ValidationError) as refused:
        PLANNED.validate_python("9999-12-31")
    assert rule_of(refused) == "date-beyond-horizon"


def test_an_unknown_zone_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        ServiceSettings(timezone="Mars/Olympus_Mons")
