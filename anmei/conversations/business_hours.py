"""The shape of a tenant's business hours (docs/routing.md), checked the same way by the API and admin."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date, datetime
from typing import Any

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def business_hours_error(value: Any) -> str | None:
    """Say what is wrong with a business-hours document, or None when it is valid (or empty: no hours)."""
    if value in (None, {}):
        return None
    if not isinstance(value, dict) or set(value) - {"timezone", "weekly", "holidays"}:
        return "business_hours is {timezone, weekly, holidays}"
    try:
        zoneinfo.ZoneInfo(str(value.get("timezone")))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "timezone: unknown time zone"
    weekly = value.get("weekly")
    if not isinstance(weekly, dict):
        return 'weekly: {"mon": [["09:00", "12:00"]], …}'
    for day, periods in weekly.items():
        if day not in DAYS:
            return f"weekly: unknown day {day!r}; use {', '.join(DAYS)}"
        if not isinstance(periods, list):
            return f"weekly.{day}: a list of periods"
        for period in periods:
            if not (isinstance(period, list) and len(period) == 2):
                return f'weekly.{day}: a period is ["HH:MM", "HH:MM"]'
            start, end = period
            if not (isinstance(start, str) and _HHMM.match(start) and isinstance(end, str)):
                return f'weekly.{day}: a period is ["HH:MM", "HH:MM"]'
            if not (_HHMM.match(end) or end == "24:00"):
                return f'weekly.{day}: a period is ["HH:MM", "HH:MM"]'
            if period[0] >= period[1]:
                return f"weekly.{day}: a period ends after it starts"
    holidays = value.get("holidays", [])
    if not isinstance(holidays, list) or len(holidays) > 400:
        return "holidays: a list of YYYY-MM-DD dates"
    for day in holidays:
        try:
            date.fromisoformat(day)
        except (TypeError, ValueError):
            return f"holidays: {day!r} is not YYYY-MM-DD"
    return None


def business_hours_open(hours: dict[str, Any] | None, at: datetime) -> bool:
    """Say whether `at` (an aware instant) falls inside the tenant's business hours.

    Periods are read on the local wall clock of `hours["timezone"]`; a period is [start, end)
    within one day, "24:00" ending it at midnight (an evening shift past midnight is written as
    two periods, one per day). A
    holiday is a local date with no hours at all. No hours configured means always open.
    """
    if not hours:
        return True
    local = at.astimezone(zoneinfo.ZoneInfo(hours["timezone"]))
    if local.date().isoformat() in set(hours.get("holidays", [])):
        return False
    clock = local.strftime("%H:%M")
    periods = hours.get("weekly", {}).get(DAYS[local.weekday()], [])
    return any(start <= clock < end for start, end in periods)
