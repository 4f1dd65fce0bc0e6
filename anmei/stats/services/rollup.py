"""Roll reporting events and messages up into hourly and daily rows (definitions: docs/metrics.md).

Every function recomputes its window from the sources and upserts the result, deleting rows whose
key no longer occurs: running it twice leaves the same rows, and late data is picked up by running
it again (the incremental run re-rolls the last hours and the start hour of every conversation
touched since). No locks are held across anything but the database.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Min, Sum

from anmei.accounts.models import User
from anmei.conversations.models import Conversation, Message
from anmei.stats.models import (
    ReportingEvent,
    StatsCustomerDay,
    StatsDaily,
    StatsHourly,
    StatsSettings,
    StatsTenantDaily,
)
from anmei.stats.services.cohort import cohort_figures
from anmei.stats.services.figures import (
    FIGURE_COLUMNS,
    empty_figures,
    figures_to_columns,
)
from anmei.stats.services.terms import rollup_terms
from anmei.stats.services.upsert import scope_rows_replace

logger = logging.getLogger("anmei.stats")
K = ReportingEvent.Kind
SENDER = Message.SenderType


def tenant_zone(tenant_id: int) -> ZoneInfo:
    name = StatsSettings.objects.filter(tenant_id=tenant_id).values_list("time_zone", flat=True).first()
    return ZoneInfo(name or settings.STATS_DEFAULT_TIME_ZONE)


def local_day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def floor_hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


# --- one hour -------------------------------------------------------------------------------


def _messages(tenant_id: int, start: datetime, end: datetime, rows: dict) -> None:
    """Message figures of the messages stored in [start, end), and the reply/transfer events then."""
    field = {SENDER.CUSTOMER: "customer_messages", SENDER.CONSULTANT: "human_messages", SENDER.BOT: "bot_replies"}
    for row in (
        Message.objects.filter(tenant_id=tenant_id, created_at__gte=start, created_at__lt=end, is_blocked=False)
        .exclude(
            sender_type=SENDER.BOT, payload__has_key="kind", payload__kind="welcome"
        )  # welcomes are automation, not replies
        .values("conversation__consultant_id", "conversation__channel", "sender_type")
        .annotate(n=Count("id"))
        .order_by()
    ):
        if row["sender_type"] in field:
            key = (row["conversation__consultant_id"] or 0, row["conversation__channel"])
            rows[key][field[row["sender_type"]]] += row["n"]
    for event in ReportingEvent.objects.filter(
        tenant_id=tenant_id, kind__in=[K.REPLY, K.TRANSFER], occurred_at__gte=start, occurred_at__lt=end
    ).values("kind", "consultant_id", "channel", "value_s"):
        f = rows[(event["consultant_id"] or 0, event["channel"])]
        if event["kind"] == K.TRANSFER:
            f["transfers"] += 1
        else:
            f["reply_count"] += 1
            f["reply_sum_s"] += event["value_s"] or 0.0


def hour_figures(tenant_id: int, hour: datetime) -> dict[tuple[int, str], dict[str, Any]]:
    """Compute (without writing) the figures of one UTC hour, keyed by (consultant_id, channel)."""
    rows: dict[tuple[int, str], dict[str, Any]] = defaultdict(empty_figures)
    start = floor_hour(hour)
    end = start + timedelta(hours=1)
    cohort_figures(tenant_id, start, end, rows)
    _messages(tenant_id, start, end, rows)
    return rows


def rollup_hour(*, tenant_id: int, hour: datetime, zone: ZoneInfo | None = None) -> int:
    """Recompute one UTC hour of a tenant and upsert its rows; return how many rows it has now."""
    start = floor_hour(hour)
    zone = zone or tenant_zone(tenant_id)
    local = start.astimezone(zone)
    rows = hour_figures(tenant_id, start)
    objects = [
        StatsHourly(
            tenant_id=tenant_id,
            hour=start,
            consultant_id=consultant_id,
            channel=channel,
            local_day=local.date(),
            local_hour=local.hour,
            weekday=local.weekday(),
            **figures_to_columns(figures),
        )
        for (consultant_id, channel), figures in rows.items()
    ]
    scope_rows_replace(
        StatsHourly, objects, {"tenant_id": tenant_id, "hour": start}, ["tenant", "hour", "consultant_id", "channel"]
    )
    return len(objects)


# --- one day --------------------------------------------------------------------------------


def rollup_day(*, tenant_id: int, day: date, zone: ZoneInfo | None = None, terms: bool = False) -> None:
    """Sum a local day's hourly rows into daily rows; recompute its customers, registrations (and words)."""
    zone = zone or tenant_zone(tenant_id)
    start, end = local_day_bounds(day, zone)
    hourly = StatsHourly.objects.filter(tenant_id=tenant_id, local_day=day)
    sums = {
        (row.pop("consultant_id"), row.pop("channel")): row
        for row in hourly.values("consultant_id", "channel").annotate(**{c: Sum(c) for c in FIGURE_COLUMNS}).order_by()
    }
    for row in hourly.values("consultant_id", "channel", "local_hour").annotate(n=Sum("customer_messages")).order_by():
        sums[(row["consultant_id"], row["channel"])][f"cm_h{row['local_hour']:02d}"] = row["n"]
    daily = [
        StatsDaily(tenant_id=tenant_id, day=day, consultant_id=consultant_id, channel=channel, **columns)
        for (consultant_id, channel), columns in sums.items()
    ]
    scope_rows_replace(
        StatsDaily, daily, {"tenant_id": tenant_id, "day": day}, ["tenant", "day", "consultant_id", "channel"]
    )
    _customers(tenant_id, day, start, end, zone)
    _registrations(tenant_id, day, start, end)
    if terms:
        rollup_terms(tenant_id=tenant_id, day=day, start=start, end=end)


def _customers(tenant_id: int, day: date, start: datetime, end: datetime, zone: ZoneInfo) -> None:
    wrote = set(
        Message.objects.filter(
            tenant_id=tenant_id,
            created_at__gte=start,
            created_at__lt=end,
            sender_type=SENDER.CUSTOMER,
            is_blocked=False,
        )
        .values_list("conversation__customer_id", "conversation__consultant_id", "conversation__channel")
        .distinct()
        .order_by()
    )
    first = dict(
        Conversation.objects.filter(tenant_id=tenant_id, customer_id__in={w[0] for w in wrote})
        .values("customer_id")
        .annotate(first=Min("created_at"))
        .values_list("customer_id", "first")
        .order_by()
    )
    objects = [
        StatsCustomerDay(
            tenant_id=tenant_id,
            day=day,
            customer_id=customer_id,
            consultant_id=consultant_id or 0,
            channel=channel,
            first_day=first[customer_id].astimezone(zone).date(),
        )
        for customer_id, consultant_id, channel in wrote
    ]
    scope_rows_replace(
        StatsCustomerDay,
        objects,
        {"tenant_id": tenant_id, "day": day},
        ["tenant", "day", "customer_id", "consultant_id", "channel"],
    )


def _registrations(tenant_id: int, day: date, start: datetime, end: datetime) -> None:
    joined = dict(
        User.objects.filter(
            tenant_id=tenant_id, role=User.Role.CUSTOMER, created_at__gte=start, created_at__lt=end
        ).values_list("id", "created_at")
    )
    first = (
        Message.objects.filter(
            tenant_id=tenant_id,
            conversation__customer_id__in=list(joined),
            sender_type=SENDER.CUSTOMER,
            is_blocked=False,
        )
        .values("conversation__customer_id")
        .annotate(first=Min("created_at"))
        .values_list("conversation__customer_id", "first")
        .order_by()
    )
    converted = sum(1 for customer_id, at in first if at <= joined[customer_id] + timedelta(days=7))
    objects = (
        []
        if not joined
        else [
            StatsTenantDaily(tenant_id=tenant_id, day=day, registrations=len(joined), registrations_converted=converted)
        ]
    )
    scope_rows_replace(StatsTenantDaily, objects, {"tenant_id": tenant_id, "day": day}, ["tenant", "day"])
