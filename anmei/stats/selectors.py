"""Statistics reads: every figure comes from the rollup tables, never from raw messages.

Scope is a list of tenant ids (one for tenant staff; any for operators) plus optional consultant
and channel filters. Definitions: docs/metrics.md.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q, Sum

from anmei.accounts.models import User
from anmei.common.permissions import is_operator
from anmei.conversations.selectors import conversation_get
from anmei.stats.models import (
    Rating,
    StatsCustomerDay,
    StatsDaily,
    StatsHourly,
    StatsSettings,
    StatsTenantDaily,
    StatsTermDaily,
)
from anmei.stats.services.figures import (
    COUNTERS,
    FIGURE_COLUMNS,
    HOUR_COLUMNS,
    columns_to_figures,
    hist_percentile,
)
from anmei.stats.services.rollup import tenant_zone
from anmei.tenants.models import Tenant


def _avg(total: float, count: int, digits: int = 1) -> float | None:
    return round(total / count, digits) if count else None


def _scope(model, *, tenant_ids: list[int] | None, consultant_id: int | None, channel: str | None) -> Q:
    q = Q()
    if tenant_ids is not None:
        q &= Q(tenant_id__in=tenant_ids)
    if consultant_id is not None:
        q &= Q(consultant_id=consultant_id)
    if channel:
        q &= Q(channel=channel)
    return q


def _terms(*, tenant_ids, day_from: date, day_to: date, limit: int) -> dict[str, list[tuple[str, int]]]:
    """Top terms of each kind (word, question, keyword) over the days, in one query."""
    qs = StatsTermDaily.objects.filter(day__gte=day_from, day__lte=day_to)
    if tenant_ids is not None:
        qs = qs.filter(tenant_id__in=tenant_ids)
    by_kind: dict[str, list[tuple[str, int]]] = {kind: [] for kind in StatsTermDaily.Kind.values}
    for row in qs.values("kind", "term").annotate(n=Sum("count")).order_by():
        by_kind[row["kind"]].append((row["term"], row["n"]))
    # Ties by code point in Python: database collations order Chinese differently from each other.
    return {kind: sorted(terms, key=lambda item: (-item[1], item[0]))[:limit] for kind, terms in by_kind.items()}


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

    customers = StatsCustomerDay.objects.filter(scope & in_range).aggregate(
        total=Count("customer_id", distinct=True),
        new=Count("customer_id", distinct=True, filter=Q(first_day__gte=day_from, first_day__lte=day_to)),
    )
    per_consultant = list(
        daily.exclude(consultant_id=0)
        .values("consultant_id")
        .annotate(
            **{
                c: Sum(c)
                for c in (
                    "conversations",
                    "first_response_sum_s",
                    "first_response_count",
                    "handle_sum_s",
                    "handle_count",
                    "csat_sum",
                    "csat_count",
                )
            }
        )
        .order_by("consultant_id")
    )
    names = {
        u.id: u.nickname or u.username
        for u in User.objects.filter(id__in=[c["consultant_id"] for c in per_consultant]).only(
            "id", "nickname", "username"
        )
    }
    consultants = [
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
    channels = dict(daily.values("channel").annotate(n=Sum("conversations")).values_list("channel", "n").order_by())

    heat: Counter[tuple[int, int]] = Counter()
    busy: Counter[int] = Counter()
    for row in daily.values("day").annotate(**{h: Sum(h) for h in HOUR_COLUMNS}).order_by():
        weekday = row["day"].weekday()
        for hour, column in enumerate(HOUR_COLUMNS):
            heat[(weekday, hour)] += row[column]
            busy[hour] += row[column]
    hourly_scope = _scope(StatsHourly, tenant_ids=tenant_ids, consultant_id=consultant_id, channel=channel)
    hourly_range = Q(local_day__gte=day_from, local_day__lte=day_to)

    tenant_wide = consultant_id is None and not channel
    keyword_hits = hot_words = hot_questions = []
    registration = {"registered": None, "converted": None, "rate": None}
    if tenant_wide:
        terms = _terms(tenant_ids=tenant_ids, day_from=day_from, day_to=day_to, limit=top)
        keyword_hits, hot_words, hot_questions = terms["keyword"], terms["word"], terms["question"]
        reg_qs = StatsTenantDaily.objects.filter(day__gte=day_from, day__lte=day_to)
        if tenant_ids is not None:
            reg_qs = reg_qs.filter(tenant_id__in=tenant_ids)
        reg = reg_qs.aggregate(r=Sum("registrations"), c=Sum("registrations_converted"))
        registered, converted = reg["r"] or 0, reg["c"] or 0
        registration = {"registered": registered, "converted": converted, "rate": _avg(converted, registered, 4)}

    as_of_qs = (
        StatsSettings.objects.all() if tenant_ids is None else StatsSettings.objects.filter(tenant_id__in=tenant_ids)
    )
    as_of = as_of_qs.aggregate(m=Min("rolled_until"))["m"]
    total = customers["total"]
    result = {
        "customers": {"total": total, "new": customers["new"], "returning": total - customers["new"]},
        "conversations": {
            "total": f["conversations"],
            "valid": f["valid_conversations"],
            "bot_only": f["bot_only"],
            "transferred_to_human": f["transferred"],
            "avg_duration_s": _avg(f["duration_sum_s"], f["ended"]),
        },
        "one_time_resolution_rate": _avg(f["resolved_once"], f["ended"], 4),
        "first_response": {
            "avg_s": _avg(f["first_response_sum_s"], f["first_response_count"]),
            "p50_s": hist_percentile(f["first_response_hist"], 0.5),
            "p90_s": hist_percentile(f["first_response_hist"], 0.9),
        },
        "handle_time": {
            "avg_s": _avg(f["handle_sum_s"], f["handle_count"]),
            "p50_s": hist_percentile(f["handle_hist"], 0.5),
        },
        "consultants": consultants,
        "bot": {
            "auto_replies": f["bot_replies"],
            "transfers": f["transferred"],
            "keyword_hits": [{"keyword": k, "count": n} for k, n in keyword_hits],
        },
        "hot_words": [{"word": w, "count": n} for w, n in hot_words],
        "busy_hours": [{"hour": h, "count": busy[h]} for h in range(24)],
        "channels": [{"channel": c, "count": n} for c, n in sorted(channels.items(), key=lambda i: (-i[1], i[0])) if n],
        "csat": {"avg": _avg(f["csat_sum"], f["csat_count"], 2), "count": f["csat_count"]},
        "as_of": as_of.isoformat() if as_of else None,
        # Beyond API.md's list (docs/metrics.md): the remaining defined figures.
        "hot_questions": [{"question": q, "count": n} for q, n in hot_questions],
        "reply_time": {"avg_s": _avg(f["reply_sum_s"], f["reply_count"]), "count": f["reply_count"]},
        "session_duration": {
            "ended": f["ended"],
            "bot_avg_s": _avg(f["bot_time_sum_s"], f["ended"]),
            "human_avg_s": _avg(f["human_time_sum_s"], f["ended"]),
        },
        "claim_time": {
            "avg_s": _avg(f["claim_sum_s"], f["claims"]),
            "new_customer_avg_s": _avg(f["new_customer_claim_sum_s"], f["new_customer_claims"]),
        },
        "transfers_between_consultants": f["transfers"],
        "registration_conversion": registration,
        "busy_heatmap": [{"weekday": d, "hour": h, "count": heat[(d, h)]} for d in range(7) for h in range(24)],
        "business_hours": _business_hours(tenant_ids, hourly_scope & hourly_range),
    }
    return result


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


def stats_tenant_comparison(*, day_from: date, day_to: date) -> list[dict[str, Any]]:
    """Operators: the headline figures of every tenant side by side."""
    rows = {
        row["tenant_id"]: row
        for row in StatsDaily.objects.filter(day__gte=day_from, day__lte=day_to)
        .values("tenant_id")
        .annotate(
            conversations=Sum("conversations"),
            customer_messages=Sum("customer_messages"),
            csat_sum=Sum("csat_sum"),
            csat_count=Sum("csat_count"),
            fr_sum=Sum("first_response_sum_s"),
            fr_count=Sum("first_response_count"),
        )
        .order_by()
    }
    out = []
    for tenant in Tenant.objects.filter(id__in=list(rows)).order_by("id"):
        row = rows[tenant.id]
        out.append(
            {
                "id": tenant.id,
                "slug": tenant.slug,
                "name": tenant.name,
                "conversations": row["conversations"],
                "customer_messages": row["customer_messages"],
                "first_response_avg_s": _avg(row["fr_sum"], row["fr_count"]),
                "csat_avg": _avg(row["csat_sum"], row["csat_count"], 2),
            }
        )
    return out


def stats_scope(*, user: User, tenant: str | None, consultant_id: int | None) -> tuple[list[int] | None, int | None]:
    """Whose figures a user may read: (tenant ids or None for all tenants, forced consultant id).

    Consultants see only their own figures; tenant admins their tenant; operators any tenant by id
    or slug, or every tenant side by side when they name none.
    """
    from anmei.common.errors import ApplicationError, NotFoundError

    if is_operator(user):
        if not tenant:
            return None, consultant_id
        by_id = Q(id=int(tenant)) if tenant.isdigit() and len(tenant) <= 18 else Q(pk__in=[])
        match = Tenant.objects.filter(Q(slug=tenant) | by_id).first()
        if match is None:
            raise NotFoundError("tenant")
        return [match.id], consultant_id
    if user.role == User.Role.ADMIN:
        return [user.tenant_id], consultant_id
    if user.role == User.Role.CONSULTANT:
        if consultant_id is not None and consultant_id != user.id:
            raise ApplicationError("permission_denied", "consultants see only their own figures", status_code=403)
        return [user.tenant_id], user.id
    raise ApplicationError("permission_denied", "staff only", status_code=403)


def stats_daily_rows(
    *, tenant_ids: list[int] | None, day_from: date, day_to: date, consultant_id: int | None, channel: str | None
) -> list[dict[str, Any]]:
    """The daily rollup rows of a period (the CSV export), with consultant names, in a stable order."""
    scope = _scope(StatsDaily, tenant_ids=tenant_ids, consultant_id=consultant_id, channel=channel)
    rows = list(
        StatsDaily.objects.filter(scope, day__gte=day_from, day__lte=day_to)
        .values("tenant_id", "day", "consultant_id", "channel", *COUNTERS)
        .order_by("day", "tenant_id", "consultant_id", "channel")
    )
    names = {
        u.id: u.nickname or u.username
        for u in User.objects.filter(id__in={r["consultant_id"] for r in rows}).only("id", "nickname", "username")
    }
    return [
        {
            "day": r["day"].isoformat(),
            "tenant_id": r["tenant_id"],
            "consultant_id": r["consultant_id"],
            "consultant": names.get(r["consultant_id"], ""),
            "channel": r["channel"],
            "conversations": r["conversations"],
            "valid": r["valid_conversations"],
            "bot_only": r["bot_only"],
            "transferred_to_human": r["transferred"],
            "ended": r["ended"],
            "resolved_once": r["resolved_once"],
            "first_response_avg_s": _avg(r["first_response_sum_s"], r["first_response_count"]),
            "handle_time_avg_s": _avg(r["handle_sum_s"], r["handle_count"]),
            "customer_messages": r["customer_messages"],
            "auto_replies": r["bot_replies"],
            "csat_avg": _avg(r["csat_sum"], r["csat_count"], 2),
            "csat_count": r["csat_count"],
        }
        for r in rows
    ]


def stats_filter_choices(*, tenant_ids: list[int] | None) -> dict[str, list]:
    """Consultants and channels that occur in the rollups (the page's filter lists)."""
    qs = StatsDaily.objects.all() if tenant_ids is None else StatsDaily.objects.filter(tenant_id__in=tenant_ids)
    consultant_ids = set(qs.exclude(consultant_id=0).values_list("consultant_id", flat=True).distinct().order_by())
    staff = User.objects.filter(role__in=[User.Role.CONSULTANT, User.Role.ADMIN])
    staff = staff.filter(Q(id__in=consultant_ids) | Q(tenant_id__in=tenant_ids or []))
    return {
        "consultants": [{"id": u.id, "name": u.nickname or u.username} for u in staff.order_by("id")],
        "channels": sorted(set(qs.values_list("channel", flat=True).distinct().order_by())),
        "tenants": [{"id": t.id, "slug": t.slug, "name": t.name} for t in Tenant.objects.order_by("id")]
        if tenant_ids is None
        else [],
    }


def rating_get(*, user: User, conversation_id: int) -> dict[str, Any]:
    """Whether a conversation was rated, and how: the customer's pages ask it so a rated one stays rated.

    The conversation's customer, or staff of its tenant; anyone else gets a 404 (like the POST).
    """
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    rating = Rating.objects.filter(conversation=conversation).first()
    return {
        "conversation_id": conversation.id,
        "rated": rating is not None,
        "score": rating.score if rating else None,
        "comment": rating.comment if rating else None,
        "created_at": rating.created_at.isoformat() if rating else None,
    }
