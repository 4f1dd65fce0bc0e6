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
    Rating,
    ReportingEvent,
    StatsCustomerDay,
    StatsDaily,
    StatsHourly,
    StatsSettings,
    StatsTenantDaily,
)
from anmei.stats.services.figures import (
    FIGURE_COLUMNS,
    empty_figures,
    figures_to_columns,
    hist_add,
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


def _seconds(later: datetime, earlier: datetime) -> float:
    return max((later - earlier).total_seconds(), 0.0)


def _stints(claimer: int, holder: int, claimed_at: datetime, end_at: datetime, handle: float, handovers: list):
    """Handling time split by holder: (consultant, seconds held) from the claim to the end.

    Each accepted transfer closes the giver's stint and opens the receiver's; without one the
    whole handling time is the one holder's (docs/metrics.md "Handling time").
    """
    if not handovers:
        return [(holder, handle)]
    stints, current, since = [], claimer, claimed_at
    for event in handovers:
        at = min(max(event["occurred_at"], since), end_at)
        stints.append((event["consultant_id"] or current, _seconds(at, since)))
        current, since = (event["data"] or {}).get("to_consultant") or current, at
    stints.append((holder or current, _seconds(end_at, since)))
    return stints


def _cohort(tenant_id: int, start: datetime, end: datetime, rows: dict) -> None:
    """Conversation figures of the conversations that started in [start, end)."""
    started = Conversation.objects.filter(tenant_id=tenant_id, created_at__gte=start, created_at__lt=end)
    conversations = list(
        started.values(
            "id", "customer_id", "consultant_id", "channel", "created_at", "ended_at", "status", "is_default"
        )
    )
    if not conversations:
        return
    ids = started.values("id")
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        Message.objects.filter(conversation_id__in=ids, is_blocked=False)
        .exclude(sender_type=SENDER.BOT, payload__has_key="kind", payload__kind="welcome")
        .values("conversation_id", "sender_type")
        .annotate(n=Count("id"))
        .order_by()
    ):
        counts[row["conversation_id"]][row["sender_type"]] = row["n"]
    events: dict[int, dict[str, dict]] = defaultdict(dict)
    for event in ReportingEvent.objects.filter(
        tenant_id=tenant_id,
        conversation_id__in=ids,
        kind__in=[K.CLAIM, K.HANDOFF, K.FIRST_RESPONSE, K.RESOLUTION],
    ).values("conversation_id", "kind", "value_s", "occurred_at", "consultant_id"):
        events[event["conversation_id"]][event["kind"]] = event
    handovers: dict[int, list[dict]] = defaultdict(list)  # accepted transfers, in order
    for event in (
        ReportingEvent.objects.filter(tenant_id=tenant_id, conversation_id__in=ids, kind=K.TRANSFER)
        .values("conversation_id", "occurred_at", "consultant_id", "data")
        .order_by("occurred_at", "id")
    ):
        handovers[event["conversation_id"]].append(event)
    scores = dict(Rating.objects.filter(conversation_id__in=ids).values_list("conversation_id", "score"))
    ended = [c for c in conversations if c["status"] == Conversation.Status.ENDED and c["ended_at"]]
    later: dict[int, list[datetime]] = defaultdict(list)
    if ended:
        for customer_id, created_at in Conversation.objects.filter(
            tenant_id=tenant_id,
            customer_id__in={c["customer_id"] for c in ended},
            created_at__gt=min(c["ended_at"] for c in ended),
        ).values_list("customer_id", "created_at"):
            later[customer_id].append(created_at)
    recontact = timedelta(hours=settings.STATS_RECONTACT_HOURS)

    for c in conversations:
        # Each figure goes to whoever did it (docs/metrics.md "Who is credited"): the conversation,
        # its claim and a transfer away to the consultant who claimed it, the first response to
        # whoever gave it, handling time to each holder for the time they held it, the ending and
        # rating to the holder at the end.
        n = counts.get(c["id"], {})
        ev = events.get(c["id"], {})
        holder = c["consultant_id"] or 0
        claimer = (ev[K.CLAIM]["consultant_id"] or holder) if K.CLAIM in ev else holder
        f = rows[(claimer, c["channel"])]
        f["conversations"] += 1
        if n.get(SENDER.CUSTOMER):
            f["valid_conversations"] += 1
        claim = ev.get(K.CLAIM)
        if claim:
            f["claims"] += 1
            f["claim_sum_s"] += claim["value_s"] or 0.0
            if c["is_default"]:
                f["new_customer_claims"] += 1
                f["new_customer_claim_sum_s"] += claim["value_s"] or 0.0
        if K.HANDOFF in ev:
            f["transferred"] += 1
        first = ev.get(K.FIRST_RESPONSE)
        if first and first["value_s"] is not None:
            responder = rows[(first["consultant_id"] or claimer, c["channel"])]
            responder["first_response_count"] += 1
            responder["first_response_sum_s"] += first["value_s"]
            hist_add(responder["first_response_hist"], first["value_s"])
        f = rows[(holder, c["channel"])]
        if c["id"] in scores:
            f["csat_count"] += 1
            f["csat_sum"] += scores[c["id"]]
        if c["status"] != Conversation.Status.ENDED or not c["ended_at"]:
            continue
        end_at = c["ended_at"]
        f["ended"] += 1
        f["duration_sum_s"] += _seconds(end_at, c["created_at"])
        claimed_at = claim["occurred_at"] if claim else None
        f["bot_time_sum_s"] += _seconds(claimed_at or end_at, c["created_at"])
        if claimed_at:
            resolution = ev.get(K.RESOLUTION)
            handle = resolution["value_s"] if resolution and resolution["value_s"] is not None else None
            handle = _seconds(end_at, claimed_at) if handle is None else handle
            f["human_time_sum_s"] += _seconds(end_at, claimed_at)
            for stint_holder, seconds in _stints(claimer, holder, claimed_at, end_at, handle, handovers[c["id"]]):
                g = rows[(stint_holder, c["channel"])]
                g["handle_count"] += 1
                g["handle_sum_s"] += seconds
                hist_add(g["handle_hist"], seconds)
        elif n.get(SENDER.BOT) and n.get(SENDER.CUSTOMER):
            f["bot_only"] += 1
        if not any(end_at < t <= end_at + recontact for t in later.get(c["customer_id"], [])):
            f["resolved_once"] += 1


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
    _cohort(tenant_id, start, end, rows)
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
