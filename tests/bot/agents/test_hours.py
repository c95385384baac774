"""Service hours: open/closed by weekday, holidays and time zone, and what the customer is told."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.agents.hours import ServiceHours
from bot.config import ServiceHoursConfig
from bot.errors import ConfigError

SHANGHAI = ZoneInfo("Asia/Shanghai")
HOURS = ServiceHoursConfig(timezone="Asia/Shanghai",
                           weekly={"mon": "09:00-21:00", "tue": "09:00-21:00", "wed": "09:00-21:00",
                                   "thu": "09:00-21:00", "fri": "09:00-21:00", "sat": "10:00-18:00"},
                           holidays=("2026-09-22",))


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).timestamp()


def test_open_inside_the_shift_closed_outside_on_sunday_and_holidays() -> None:
    hours = ServiceHours(HOURS)
    assert hours.is_open(at(2026, 9, 21, 9, 0))
    assert hours.is_open(at(2026, 9, 21, 20, 59))
    assert not hours.is_open(at(2026, 9, 21, 21, 0))
    assert not hours.is_open(at(2026, 9, 21, 8, 59))
    assert not hours.is_open(at(2026, 9, 22, 12, 0))  # holiday
    assert hours.is_open(at(2026, 9, 26, 12, 0))  # Saturday
    assert not hours.is_open(at(2026, 9, 27, 12, 0))  # Sunday: no shift


def test_time_zone_is_the_configured_one_not_the_servers() -> None:
    hours = ServiceHours(HOURS)
    utc_morning = dt.datetime(2026, 9, 21, 2, 0, tzinfo=dt.UTC).timestamp()  # 10:00 in Shanghai
    assert hours.is_open(utc_morning)


def test_next_shift_skips_the_holiday_and_is_said_in_both_languages() -> None:
    hours = ServiceHours(HOURS)
    late_monday = at(2026, 9, 21, 22, 13)
    assert hours.next_open(late_monday) == dt.datetime(2026, 9, 23, 9, 0, tzinfo=SHANGHAI)
    assert hours.describe_next_open(late_monday, "zh") == "后天（周三）09:00"
    assert hours.describe_next_open(late_monday, "en") == "Wed 23 Sep, 09:00"
    saturday_night = at(2026, 9, 26, 19, 0)
    assert hours.describe_next_open(saturday_night, "zh") == "后天（周一）09:00"
    mondays_only = ServiceHours(ServiceHoursConfig(weekly={"mon": "09:00-12:00"}))
    assert mondays_only.describe_next_open(at(2026, 9, 23, 10, 0), "zh") == "9月28日（周一）09:00"
    early = at(2026, 9, 24, 7, 30)
    assert hours.describe_next_open(early, "en") == "09:00 today"


def test_no_weekly_hours_means_always_staffed() -> None:
    hours = ServiceHours(ServiceHoursConfig())
    assert hours.is_open(at(2026, 9, 27, 3, 0))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (ServiceHoursConfig(timezone="Mars/Olympus"), "time zone"),
        (ServiceHoursConfig(weekly={"monday": "09:00-18:00"}), "weekly.monday"),
        (ServiceHoursConfig(weekly={"mon": "9-18"}), "HH:MM-HH:MM"),
        (ServiceHoursConfig(weekly={"mon": "18:00-09:00"}), "end after"),
        (ServiceHoursConfig(weekly={"mon": "25:00-26:00"}), "not a time"),
        (ServiceHoursConfig(holidays=("next tuesday",)), "YYYY-MM-DD"),
    ],
)
def test_bad_hours_are_config_errors_naming_the_key(config: ServiceHoursConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ServiceHours(config)


def test_the_current_shift_start_is_known_while_open() -> None:
    hours = ServiceHours(HOURS)
    assert hours.shift_started(at(2026, 9, 21, 9, 30)) == at(2026, 9, 21, 9, 0)
    assert hours.shift_started(at(2026, 9, 21, 22, 0)) == 0.0
    assert ServiceHours(ServiceHoursConfig()).shift_started(at(2026, 9, 21, 9, 30)) == 0.0
