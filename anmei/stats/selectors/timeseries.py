"""Per-day and per-hour series of one figure (docs/metrics.md "Where each figure is served")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Sum

from anmei.stats.models import StatsCustomerDay, StatsDaily, StatsHourly
from anmei.stats.selectors.rollups import average as _avg
from anmei.stats.selectors.rollups import rollup_scope as _scope
from anmei.stats.services.rollup import tenant_zone

# metric name -> (numerator, denominator or None, digits)
TIMESERIES_METRICS: dict[str, tuple[str, str | None, int]] = {
    "conversations": ("conversations", None, 0),
    "valid_conversations": ("valid_conversations", None, 0),
    "bot_only": ("bot_only", None, 0),
    "transferred_to_human": ("transferred", None, 0),
    "customer_messages": ("customer_messages", None, 0),
    "auto_replies": ("bot_replies", None, 0),
    "first_response_avg_s": ("first_response_sum_s", "first_response_count", 1),
    "reply_time_avg_s": ("reply_sum_s", "reply_count", 1),
    "handle_time_avg_s": ("handle_sum_s", "handle_count", 1),
    "avg_duration_s": ("duration_sum_s", "ended", 1),
    "one_time_resolution_rate": ("resolved_once", "ended", 4),
    "csat_avg": ("csat_sum", "csat_count", 2),
    "customers": ("", None, 0),  # distinct: per day only
}


def stats_timeseries(
    *,
    tenant_ids: list[int] | None,
    metric: str,
    granularity: str,
    day_from: date,
    day_to: date,
    consultant_id: int | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """One metric per local day or hour over the range; every bucket present (0 or null when empty)."""
    num, den, digits = TIMESERIES_METRICS[metric]
    zone = tenant_zone(tenant_ids[0]) if tenant_ids and len(tenant_ids) == 1 else tenant_zone(0)
    if metric == "customers":
        scope = _scope(StatsCustomerDay, tenant_ids=tenant_ids, consultant_id=consultant_id, channel=channel)
        counts = dict(
            StatsCustomerDay.objects.filter(scope, day__gte=day_from, day__lte=day_to)
            .values("day")
            .annotate(n=Count("customer_id", distinct=True))
            .values_list("day", "n")
            .order_by()
        )
        days = [day_from + timedelta(days=i) for i in range((day_to - day_from).days + 1)]
        points = [{"t": d.isoformat(), "value": counts.get(d, 0)} for d in days]
        return {"metric": metric, "granularity": granularity, "points": points}
    fields = [num] + ([den] if den else [])
    if granularity == "day":
        scope = _scope(StatsDaily, tenant_ids=tenant_ids, consultant_id=consultant_id, channel=channel)
        rows = (
            StatsDaily.objects.filter(scope, day__gte=day_from, day__lte=day_to)
            .values("day")
            .annotate(**{f: Sum(f) for f in fields})
            .order_by()
        )
        by_key = {row["day"]: row for row in rows}
        keys = [day_from + timedelta(days=i) for i in range((day_to - day_from).days + 1)]
        label = date.isoformat
    else:
        scope = _scope(StatsHourly, tenant_ids=tenant_ids, consultant_id=consultant_id, channel=channel)
        rows = (
            StatsHourly.objects.filter(scope, local_day__gte=day_from, local_day__lte=day_to)
            .values("hour")
            .annotate(**{f: Sum(f) for f in fields})
            .order_by()
        )
        by_key = {row["hour"]: row for row in rows}
        start = datetime(day_from.year, day_from.month, day_from.day, tzinfo=zone)
        end = datetime(day_to.year, day_to.month, day_to.day, tzinfo=zone) + timedelta(days=1)
        # Step in UTC: aware arithmetic in a zone with DST steps wall-clock hours, not real ones.
        keys, moment, end = [], start.astimezone(UTC), end.astimezone(UTC)
        while moment < end:
            keys.append(moment.astimezone(zone))
            moment += timedelta(hours=1)
        by_key = {k.astimezone(zone): v for k, v in by_key.items()}

        def label(moment: datetime) -> str:
            return moment.isoformat()

    points = []
    for key in keys:
        row = by_key.get(key)
        if den:
            value = _avg(row[num] or 0, row[den] or 0, digits) if row else None
        else:
            value = (row[num] or 0) if row else 0
        points.append({"t": label(key), "value": value})
    return {"metric": metric, "granularity": granularity, "points": points}
