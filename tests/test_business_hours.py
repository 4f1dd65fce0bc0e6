"""Business hours read on the tenant's wall clock: lunch breaks, holidays, edges across midnight in Shanghai."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from anmei.conversations.business_hours import business_hours_open

HOURS = {
    "timezone": "Asia/Shanghai",
    "weekly": {
        "mon": [["09:00", "12:00"], ["13:30", "18:00"]],
        "fri": [["20:00", "24:00"]],
        "sat": [["00:00", "02:00"]],
    },
    "holidays": ["2027-01-04"],
}


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "open_"),
    [
        # Monday 2027-01-11 in Shanghai (UTC+8): 09:00 local is 01:00 UTC
        (utc(2027, 1, 11, 0, 59, 59), False),
        (utc(2027, 1, 11, 1, 0, 0), True),
        (utc(2027, 1, 11, 3, 59, 59), True),  # 11:59:59 local
        (utc(2027, 1, 11, 4, 0, 0), False),  # 12:00 local: lunch break starts
        (utc(2027, 1, 11, 5, 29, 59), False),
        (utc(2027, 1, 11, 5, 30, 0), True),  # 13:30 local
        (utc(2027, 1, 11, 10, 0, 0), False),  # 18:00 local
        # Sunday 2027-01-10 17:00 UTC is already Monday 01:00 in Shanghai: closed (before 09:00)
        (utc(2027, 1, 10, 17, 0, 0), False),
        # Friday night shift runs to midnight and Saturday's continues from it
        (utc(2027, 1, 15, 11, 59, 59), False),  # Fri 19:59:59 local
        (utc(2027, 1, 15, 15, 59, 59), True),  # Fri 23:59:59 local
        (utc(2027, 1, 15, 16, 0, 0), True),  # Sat 00:00 local (Friday 16:00 UTC)
        (utc(2027, 1, 15, 17, 59, 59), True),  # Sat 01:59:59 local
        (utc(2027, 1, 15, 18, 0, 0), False),  # Sat 02:00 local
        # Monday 2027-01-04 is a holiday in Shanghai even though it is still Sunday in UTC at 01:30 local
        (utc(2027, 1, 3, 17, 30, 0), False),
        (utc(2027, 1, 4, 2, 0, 0), False),  # 10:00 local on the holiday
        (utc(2027, 1, 4, 16, 0, 0), False),  # Tuesday 00:00 local: no Tuesday hours
    ],
)
def test_open_is_read_on_the_shanghai_wall_clock(at, open_):
    assert business_hours_open(HOURS, at) is open_


def test_no_hours_configured_is_always_open():
    assert business_hours_open({}, utc(2027, 1, 3, 3, 0, 0)) is True
    assert business_hours_open(None, utc(2027, 1, 3, 3, 0, 0)) is True


def test_a_day_without_periods_is_closed_all_day():
    hours = {"timezone": "Asia/Shanghai", "weekly": {"mon": []}, "holidays": []}
    assert business_hours_open(hours, utc(2027, 1, 11, 4, 0, 0)) is False
