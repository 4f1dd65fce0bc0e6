"""The shape of a tenant's business hours (docs/routing.md), checked the same way by the API and admin."""

from __future__ import annotations

import re
import zoneinfo
from datetime import date
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
            if not all(isinstance(t, str) and _HHMM.match(t) for t in period):
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
