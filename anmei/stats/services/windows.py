"""Which hours and days to re-roll: the incremental run (watermark, late hours, touched cohorts), the
daily run, and the beat bodies over every tenant."""

from __future__ import annotations

import logging
import time
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models.functions import TruncHour
from django.utils import timezone

from anmei.conversations.models import Conversation
from anmei.stats.models import ReportingEvent, StatsSettings
from anmei.stats.services.rebuild import conversations_touched, reporting_events_derive, reporting_events_store
from anmei.stats.services.rollup import (
    UTC,
    _registrations,
    floor_hour,
    local_day_bounds,
    rollup_day,
    rollup_hour,
    tenant_zone,
)

logger = logging.getLogger("anmei.stats")


def rollup_range(*, tenant_id: int, start: datetime, end: datetime, terms: bool = False) -> int:
    """Derive the missing events of [start, end), re-roll every hour in it and the local days they
    fall on; return how many events were derived."""
    derived = reporting_events_derive(tenant_id=tenant_id, start=start, end=end)
    zone = tenant_zone(tenant_id)
    hour = floor_hour(start)
    days: set[date] = set()
    while hour < end:
        rollup_hour(tenant_id=tenant_id, hour=hour, zone=zone)
        days.add(hour.astimezone(zone).date())
        hour += timedelta(hours=1)
    for day in sorted(days):
        rollup_day(tenant_id=tenant_id, day=day, zone=zone, terms=terms)
    return derived


def _start_hours(tenant_id: int, conversation_ids: set[int]) -> set[datetime]:
    """The UTC hours these conversations started in (their cohort rows)."""
    if not conversation_ids:
        return set()
    return set(
        Conversation.objects.filter(tenant_id=tenant_id, id__in=conversation_ids)
        .annotate(h=TruncHour("created_at", tzinfo=UTC))
        .values_list("h", flat=True)
        .distinct()
        .order_by()
    )


def rollup_recent(*, tenant_id: int, now: datetime | None = None) -> dict[str, Any]:
    """The incremental run: the last STATS_ROLLUP_LATE_HOURS hours, the current one, and touched cohorts."""
    began = time.monotonic()
    now = now or timezone.now()
    late = timedelta(hours=settings.STATS_ROLLUP_LATE_HOURS)
    window_start = floor_hour(now) - late
    # Catch up from the last run's watermark (the database, not the beat, says what is pending):
    # after an outage the hours since the last run are rolled too, up to STATS_ROLLUP_MAX_CATCHUP_HOURS.
    rolled_until = StatsSettings.objects.filter(tenant_id=tenant_id).values_list("rolled_until", flat=True).first()
    if rolled_until is not None:
        oldest = floor_hour(now) - timedelta(hours=settings.STATS_ROLLUP_MAX_CATCHUP_HOURS)
        window_start = max(min(window_start, floor_hour(rolled_until) - late), oldest)
    count = int((floor_hour(now) - window_start) / timedelta(hours=1)) + 1
    hours: set[datetime] = set()
    # What was stored in the window: conversations started, messages, state changes, and late
    # reporting events (ratings); an idle tenant's rows cannot have changed.
    touched = conversations_touched(tenant_id=tenant_id, start=window_start, end=now)
    rated = set(
        ReportingEvent.objects.filter(tenant_id=tenant_id, created_at__gte=window_start, created_at__lt=now)
        .values_list("conversation_id", flat=True)
        .distinct()
        .order_by()
    )
    if touched or rated:
        reporting_events_store(tenant_id=tenant_id, conversation_ids=touched)
        hours = {window_start + timedelta(hours=i) for i in range(count)}
        hours |= {floor_hour(h) for h in _start_hours(tenant_id, touched | rated)}
    zone = tenant_zone(tenant_id)
    for hour in sorted(hours):
        rollup_hour(tenant_id=tenant_id, hour=hour, zone=zone)
    days = sorted({h.astimezone(zone).date() for h in hours})
    for day in days:
        # Hot words and questions of the days just touched too, so today's are never older than
        # one incremental run (docs/metrics.md "Hot words"); the daily run still redoes 3 days.
        rollup_day(tenant_id=tenant_id, day=day, zone=zone, terms=True)
    StatsSettings.objects.update_or_create(
        tenant_id=tenant_id,
        defaults={"rolled_until": now},
        create_defaults={"rolled_until": now, "time_zone": settings.STATS_DEFAULT_TIME_ZONE},
    )
    result = {"hours": len(hours), "days": len(days), "duration_ms": round((time.monotonic() - began) * 1000, 1)}
    logger.info("stats rollup", extra={"tenant_id": tenant_id, **result})
    return result


def rollup_days(*, tenant_id: int, days: list[date], terms: bool = True) -> int:
    """The daily run: re-roll whole local days (late re-contacts, conversions, hot words); return
    how many missing reporting events were derived."""
    zone = tenant_zone(tenant_id)
    derived = 0
    for day in days:
        start, end = local_day_bounds(day, zone)
        derived += rollup_range(tenant_id=tenant_id, start=start, end=end, terms=terms)
    return derived


def _tenant_ids() -> list[int]:
    from anmei.tenants.models import Tenant

    return list(Tenant.objects.filter(status=Tenant.Status.APPROVED).order_by("id").values_list("id", flat=True))


def stats_rollup_tenants_recent(*, now: datetime | None = None) -> int:
    """Beat body: the incremental run for every approved tenant; one tenant's failure does not stop the rest."""
    from anmei.common.redis import get_redis, tenant_key

    done = 0
    for tenant_id in _tenant_ids():
        # One run per tenant at a time (a slow run and the next beat must not upsert the same rows
        # concurrently); the lock expires on its own if a worker dies holding it.
        lock = get_redis().lock(tenant_key(tenant_id, "stats", "rollup"), timeout=600, blocking=False)
        if not lock.acquire():
            continue
        try:
            rollup_recent(tenant_id=tenant_id, now=now)
            done += 1
        except Exception:  # noqa: BLE001 - logged; the next run re-rolls the same window
            logger.exception("stats rollup failed", extra={"tenant_id": tenant_id})
        finally:
            try:
                lock.release()
            except Exception:  # noqa: BLE001 - expired meanwhile: nothing left to release
                pass
    return done


def stats_rollup_tenants_daily(*, now: datetime | None = None) -> int:
    """Beat body: re-roll the last 3 local days whole (re-contacts, words) and 8 days of conversions."""
    now = now or timezone.now()
    done = 0
    for tenant_id in _tenant_ids():
        try:
            zone = tenant_zone(tenant_id)
            today = now.astimezone(zone).date()
            rollup_days(tenant_id=tenant_id, days=[today - timedelta(days=i) for i in (2, 1, 0)], terms=True)
            for back in range(3, 8):
                day = today - timedelta(days=back)
                _registrations(tenant_id, day, *local_day_bounds(day, zone))
            done += 1
        except Exception:  # noqa: BLE001 - logged; the next run re-rolls the same days
            logger.exception("stats daily rollup failed", extra={"tenant_id": tenant_id})
    return done
