"""The overview object: one helper per figure family, named after its entry in docs/metrics.md
"Definitions" (and "Buckets and attribution" for business hours, "Serving" for `as_of`)."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from django.db.models import Count, Min, Q, QuerySet, Sum

from anmei.accounts.models import User
from anmei.stats.models import (
    StatsCustomerDay,
    StatsDaily,
    StatsHourly,
    StatsSettings,
    StatsTenantDaily,
    StatsTermDaily,
)
from anmei.stats.selectors.rollups import average as _avg
from anmei.stats.selectors.rollups import rollup_scope as _scope
from anmei.stats.services.figures import FIGURE_COLUMNS, HOUR_COLUMNS, columns_to_figures, hist_percentile

PER_CONSULTANT_COLUMNS = (
    "conversations",
    "first_response_sum_s",
    "first_response_count",
    "handle_sum_s",
    "handle_count",
    "csat_sum",
    "csat_count",
)


def stats_overview(
    *,
    tenant_ids: list[int] | None,
    day_from: date,
    day_to: date,
    consultant_id: int | None = None,
    channel: str | None = None,
    top: int = 20,
) -> dict[str, Any]:
    """The API.md overview object (plus the extra figures of docs/metrics.md) from the rollups."""
    scope = _scope(StatsDaily, tenant_ids=tenant_ids, consultant_id=consultant_id, channel=channel)
    in_range = Q(day__gte=day_from, day__lte=day_to)
    daily = StatsDaily.objects.filter(scope & in_range)
    f = columns_to_figures(daily.aggregate(**{c: Sum(c) for c in FIGURE_COLUMNS}))
    customers = _customers(scope & in_range, day_from=day_from, day_to=day_to)
    consultants = _per_consultant(daily)
    channels = _channels(daily)
    busy, heat = _busy_hours(daily)
    hourly_scope = _scope(StatsHourly, tenant_ids=tenant_ids, consultant_id=consultant_id, channel=channel)
    hourly_range = Q(local_day__gte=day_from, local_day__lte=day_to)

    # Tenant-wide figures have no consultant or channel dimension (docs/metrics.md "Serving").
    terms = {kind: [] for kind in StatsTermDaily.Kind.values}
    registration = {"registered": None, "converted": None, "rate": None}
    if consultant_id is None and not channel:
        terms = _terms(tenant_ids=tenant_ids, day_from=day_from, day_to=day_to, limit=top)
        registration = _registration_conversion(tenant_ids, day_from=day_from, day_to=day_to)

    as_of = _as_of(tenant_ids)
    return {
        "customers": customers,
        "conversations": _conversations_total(f),
        "one_time_resolution_rate": _one_time_resolution_rate(f),
        "first_response": _first_response_time(f),
        "handle_time": _handling_time(f),
        "consultants": consultants,
        "bot": _bot_keyword_hits(f, terms["keyword"]),
        "hot_words": [{"word": w, "count": n} for w, n in terms["word"]],
        "busy_hours": [{"hour": h, "count": busy[h]} for h in range(24)],
        "channels": channels,
        "csat": _csat(f),
        "as_of": as_of.isoformat() if as_of else None,
        # Beyond API.md's list (docs/metrics.md): the remaining defined figures.
        "hot_questions": [{"question": q, "count": n} for q, n in terms["question"]],
        "reply_time": _reply_time(f),
        "session_duration": _session_duration(f),
        "claim_time": _new_customer_claim_time(f),
        "transfers_between_consultants": f["transfers"],
        "registration_conversion": registration,
        "busy_heatmap": [{"weekday": d, "hour": h, "count": heat[(d, h)]} for d in range(7) for h in range(24)],
        "business_hours": _business_hours(tenant_ids, hourly_scope & hourly_range),
    }


def _customers(q: Q, *, day_from: date, day_to: date) -> dict[str, int]:
    """Customers (distinct): total, new (first conversation in the period), returning."""
    customers = StatsCustomerDay.objects.filter(q).aggregate(
        total=Count("customer_id", distinct=True),
        new=Count("customer_id", distinct=True, filter=Q(first_day__gte=day_from, first_day__lte=day_to)),
    )
    total = customers["total"]
    return {"total": total, "new": customers["new"], "returning": total - customers["new"]}


def _conversations_total(f: dict) -> dict[str, Any]:
    """Conversations total, valid, bot-only, transferred to human, and the mean session duration."""
    return {
        "total": f["conversations"],
        "valid": f["valid_conversations"],
        "bot_only": f["bot_only"],
        "transferred_to_human": f["transferred"],
        "avg_duration_s": _avg(f["duration_sum_s"], f["ended"]),
    }


def _one_time_resolution_rate(f: dict) -> float | None:
    """One-time resolution rate: the share of ended conversations without a re-contact."""
    return _avg(f["resolved_once"], f["ended"], 4)


def _first_response_time(f: dict) -> dict[str, float | None]:
    """First response time: mean and percentiles."""
    return {
        "avg_s": _avg(f["first_response_sum_s"], f["first_response_count"]),
        "p50_s": hist_percentile(f["first_response_hist"], 0.5),
        "p90_s": hist_percentile(f["first_response_hist"], 0.9),
    }


def _reply_time(f: dict) -> dict[str, Any]:
    """Reply time: mean and how many replies it is over."""
    return {"avg_s": _avg(f["reply_sum_s"], f["reply_count"]), "count": f["reply_count"]}


def _handling_time(f: dict) -> dict[str, float | None]:
    """Handling time: mean stint and median."""
    return {"avg_s": _avg(f["handle_sum_s"], f["handle_count"]), "p50_s": hist_percentile(f["handle_hist"], 0.5)}


def _session_duration(f: dict) -> dict[str, Any]:
    """Session duration of ended conversations, split into bot time and human time."""
    return {
        "ended": f["ended"],
        "bot_avg_s": _avg(f["bot_time_sum_s"], f["ended"]),
        "human_avg_s": _avg(f["human_time_sum_s"], f["ended"]),
    }


def _new_customer_claim_time(f: dict) -> dict[str, float | None]:
    """New-customer claim time: over all claims, and over customers' first conversations."""
    return {
        "avg_s": _avg(f["claim_sum_s"], f["claims"]),
        "new_customer_avg_s": _avg(f["new_customer_claim_sum_s"], f["new_customer_claims"]),
    }


def _per_consultant(daily: QuerySet) -> list[dict[str, Any]]:
    """The headline figures of each consultant who was credited with any (never-claimed rows left out)."""
    per_consultant = list(
        daily.exclude(consultant_id=0)
        .values("consultant_id")
        .annotate(**{c: Sum(c) for c in PER_CONSULTANT_COLUMNS})
        .order_by("consultant_id")
    )
    names = {
        u.id: u.nickname or u.username
        for u in User.objects.filter(id__in=[c["consultant_id"] for c in per_consultant]).only(
            "id", "nickname", "username"
        )
    }
    return [
        {
            "id": c["consultant_id"],
            "name": names.get(c["consultant_id"], ""),
            "conversations": c["conversations"],
            "first_response_avg_s": _avg(c["first_response_sum_s"], c["first_response_count"]),
            "handle_time_avg_s": _avg(c["handle_sum_s"], c["handle_count"]),
            "csat_avg": _avg(c["csat_sum"], c["csat_count"], 2),
        }
        for c in per_consultant
    ]


def _busy_hours(daily: QuerySet) -> tuple[Counter[int], Counter[tuple[int, int]]]:
    """Busy hours: customer messages per local hour, and per (weekday, hour) for the heat map."""
    heat: Counter[tuple[int, int]] = Counter()
    busy: Counter[int] = Counter()
    for row in daily.values("day").annotate(**{h: Sum(h) for h in HOUR_COLUMNS}).order_by():
        weekday = row["day"].weekday()
        for hour, column in enumerate(HOUR_COLUMNS):
            heat[(weekday, hour)] += row[column]
            busy[hour] += row[column]
    return busy, heat


def _channels(daily: QuerySet) -> list[dict[str, Any]]:
    """Channels: conversations started per channel, most first, empty ones left out."""
    channels = dict(daily.values("channel").annotate(n=Sum("conversations")).values_list("channel", "n").order_by())
    return [{"channel": c, "count": n} for c, n in sorted(channels.items(), key=lambda i: (-i[1], i[0])) if n]


def _bot_keyword_hits(f: dict, keyword_hits: list[tuple[str, int]]) -> dict[str, Any]:
    """Bot keyword hits, with all auto-replies and the hand-offs."""
    return {
        "auto_replies": f["bot_replies"],
        "transfers": f["transferred"],
        "keyword_hits": [{"keyword": k, "count": n} for k, n in keyword_hits],
    }


def _terms(*, tenant_ids, day_from: date, day_to: date, limit: int) -> dict[str, list[tuple[str, int]]]:
    """Hot words, hot questions and keyword hits: the top terms of each kind over the days, in one query."""
    qs = StatsTermDaily.objects.filter(day__gte=day_from, day__lte=day_to)
    if tenant_ids is not None:
        qs = qs.filter(tenant_id__in=tenant_ids)
    by_kind: dict[str, list[tuple[str, int]]] = {kind: [] for kind in StatsTermDaily.Kind.values}
    for row in qs.values("kind", "term").annotate(n=Sum("count")).order_by():
        by_kind[row["kind"]].append((row["term"], row["n"]))
    # Ties by code point in Python: database collations order Chinese differently from each other.
    return {kind: sorted(terms, key=lambda item: (-item[1], item[0]))[:limit] for kind, terms in by_kind.items()}


def _csat(f: dict) -> dict[str, Any]:
    """CSAT: mean score and how many ratings."""
    return {"avg": _avg(f["csat_sum"], f["csat_count"], 2), "count": f["csat_count"]}


def _registration_conversion(tenant_ids: list[int] | None, *, day_from: date, day_to: date) -> dict[str, Any]:
    """Registration → first message conversion (7 days)."""
    reg_qs = StatsTenantDaily.objects.filter(day__gte=day_from, day__lte=day_to)
    if tenant_ids is not None:
        reg_qs = reg_qs.filter(tenant_id__in=tenant_ids)
    reg = reg_qs.aggregate(r=Sum("registrations"), c=Sum("registrations_converted"))
    registered, converted = reg["r"] or 0, reg["c"] or 0
    return {"registered": registered, "converted": converted, "rate": _avg(converted, registered, 4)}


def _as_of(tenant_ids: list[int] | None):
    """The end of the last rolled window: the earliest over the tenants in scope."""
    as_of_qs = (
        StatsSettings.objects.all() if tenant_ids is None else StatsSettings.objects.filter(tenant_id__in=tenant_ids)
    )
    return as_of_qs.aggregate(m=Min("rolled_until"))["m"]


def _business_hours(tenant_ids: list[int] | None, q: Q) -> dict[str, Any] | None:
    """Conversations and first response split by whether they started in the tenant's business hours."""
    if not tenant_ids or len(tenant_ids) != 1:
        return None
    config = StatsSettings.objects.filter(tenant_id=tenant_ids[0]).first()
    if not config or config.business_hours_start is None or config.business_hours_end is None:
        return None
    days = [int(d) for d in config.business_days if d.isdigit()]
    inside = Q(weekday__in=days, local_hour__gte=config.business_hours_start, local_hour__lt=config.business_hours_end)
    out = {}
    for name, part in (("in", q & inside), ("out", q & ~inside)):
        agg = StatsHourly.objects.filter(part).aggregate(
            c=Sum("conversations"), n=Sum("first_response_count"), s=Sum("first_response_sum_s")
        )
        out[name] = {"conversations": agg["c"] or 0, "first_response_avg_s": _avg(agg["s"] or 0, agg["n"] or 0)}
    return out
