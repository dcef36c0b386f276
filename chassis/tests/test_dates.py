"""Business dates follow the programme's calendar, not the server's."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from pydantic import TypeAdapter, ValidationError

from score_chassis.api import PastDate, set_programme_timezone, today
from score_chassis.settings import DEFAULT_TIMEZONE, ServiceSettings


@pytest.fixture
def zone() -> Iterator[None]:
    yield
    set_programme_timezone(DEFAULT_TIMEZONE)


@pytest.mark.usefixtures("zone")
@pytest.mark.parametrize("name", ["America/La_Paz", "Pacific/Kiritimati", "Pacific/Pago_Pago"])
def test_today_is_the_date_in_the_programme_zone(name: str) -> None:
    set_programme_timezone(name)
    assert today() == dt.datetime.now(ZoneInfo(name)).date()


@pytest.mark.usefixtures("zone")
def test_a_business_date_may_be_a_day_ahead_of_the_programme_but_not_two() -> None:
    set_programme_timezone("Pacific/Pago_Pago")  # UTC-11: often a day behind the server
    dates = TypeAdapter(PastDate)
    assert dates.validate_python(today() + dt.timedelta(days=1))
    with pytest.raises(ValidationError):
        dates.validate_python(today() + dt.timedelta(days=2))


def test_an_unknown_zone_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="unknown time zone"):
        ServiceSettings(timezone="Mars/Olympus_Mons")
