"""AI reads, tenant-scoped and never writing: agent config, token usage, usage reports, canned responses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDay

from anmei.ai.models import AgentCall, AgentConfig, CannedResponse
from anmei.stats.services.rollup import local_day_bounds, tenant_zone


def _month_start(now: datetime | None = None) -> datetime:
    now = now or datetime.now(UTC)
    return datetime(now.year, now.month, 1, tzinfo=UTC)


def llm_tokens_used_this_month(*, tenant_id: int) -> int:
    """Tokens metered for the tenant since the first of the month (UTC); one indexed range sum."""
    total = AgentCall.objects.filter(tenant_id=tenant_id, created_at__gte=_month_start()).aggregate(
        total=Sum("total_tokens")
    )["total"]
    return int(total or 0)


def llm_quota_state(*, config: AgentConfig) -> dict:
    """`{monthly_tokens, used, remaining, state}`; state is ok / warning (≥ 80 %) / exceeded (≥ 100 %)."""
    quota = int(config.monthly_token_quota or 0)
    used = llm_tokens_used_this_month(tenant_id=config.tenant_id)
    if not quota:
        return {"monthly_tokens": 0, "used": used, "remaining": None, "state": "ok"}
    state = "ok"
    if used >= quota:
        state = "exceeded"
    elif used >= quota * settings.AI_QUOTA_ALERT_RATIO:
        state = "warning"
    return {"monthly_tokens": quota, "used": used, "remaining": max(quota - used, 0), "state": state}


def llm_usage_report(*, tenant_id: int, date_from: date, date_to: date, group_by: str) -> dict:
    """Totals and rows for `GET /api/v1/admin/llm-usage` over [from, to]: whole days in the tenant's
    time zone, as statistics count them (rows by day are local days too)."""
    zone = tenant_zone(tenant_id)
    start, end = local_day_bounds(date_from, zone)[0], local_day_bounds(date_to, zone)[1]
    calls = AgentCall.objects.filter(tenant_id=tenant_id, created_at__gte=start, created_at__lt=end)
    sums = {
        "calls": Count("id"),
        "failed_calls": Count("id", filter=Q(success=False)),
        "prompt_tokens": Sum("prompt_tokens"),
        "completion_tokens": Sum("completion_tokens"),
        "total_tokens": Sum("total_tokens"),
        "cost": Sum("cost"),
    }

    def clean(row: dict) -> dict:
        out = {}
        for key, value in row.items():
            if key == "cost":
                out[key] = str((value or Decimal(0)).quantize(Decimal("0.000001")))
            elif key in sums:
                out[key] = int(value or 0)
            else:
                out[key] = value
        return out

    totals = clean(calls.aggregate(**sums))
    if group_by == "day":
        grouped = calls.annotate(day=TruncDay("created_at", tzinfo=zone)).values("day")
        rows = [{**clean(r), "day": r["day"].date().isoformat()} for r in grouped.annotate(**sums).order_by("day")]
    else:
        field = {"purpose": "purpose", "model": "model"}[group_by]
        rows = [clean(r) for r in calls.values(field).annotate(**sums).order_by(field)]
    config = AgentConfig.objects.filter(tenant_id=tenant_id).first()
    quota = (
        llm_quota_state(config=config)
        if config
        else {"monthly_tokens": 0, "used": llm_tokens_used_this_month(tenant_id=tenant_id), "remaining": None}
    )
    quota.pop("state", None)
    return {"totals": totals, "quota": quota, "rows": rows}


def canned_response_list(*, tenant_id: int):
    return CannedResponse.objects.filter(tenant_id=tenant_id).order_by("shortcode", "id")


def canned_responses_matching(*, tenant_id: int, text: str, limit: int = 3) -> list[CannedResponse]:
    """Canned responses whose keywords (or shortcode) occur in the text, most keyword hits first."""
    scored = []
    for response in canned_response_list(tenant_id=tenant_id)[:500]:
        words = [str(w) for w in (response.keywords or []) if str(w).strip()]
        hits = sum(1 for w in words if w in text)
        if hits:
            scored.append((-hits, response.shortcode, response))
    return [r for *_key, r in sorted(scored, key=lambda item: item[:2])][:limit]


def agent_config_default(*, tenant_id: int) -> AgentConfig:
    """The configuration a tenant gets on first use (offline local provider), not saved."""
    return AgentConfig(
        tenant_id=tenant_id,
        timeout_seconds=settings.AI_GATEWAY_DEFAULT_TIMEOUT_SECONDS,
        breaker_threshold=settings.AI_BREAKER_THRESHOLD,
        breaker_cooldown_seconds=settings.AI_BREAKER_COOLDOWN_SECONDS,
    )


def agent_config_get(*, tenant_id: int) -> AgentConfig:
    """The tenant's agent configuration, or the unsaved default while it has none."""
    return AgentConfig.objects.filter(tenant_id=tenant_id).first() or agent_config_default(tenant_id=tenant_id)
