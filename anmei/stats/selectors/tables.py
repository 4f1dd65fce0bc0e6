"""Row listings from the rollups: tenants side by side, the daily rows of the CSV export, the filter lists."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Q, Sum

from anmei.accounts.models import User
from anmei.stats.models import StatsDaily
from anmei.stats.selectors.rollups import average as _avg
from anmei.stats.selectors.rollups import rollup_scope as _scope
from anmei.stats.services.figures import COUNTERS
from anmei.tenants.models import Tenant


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
