"""Metering and quota: the record of each agent call with its tokens and cost, and the monthly quota alerts."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.utils import timezone

from anmei.ai.models import AgentCall, AgentConfig
from anmei.ai.selectors import llm_quota_state
from anmei.notifications.models import AdminAlert
from anmei.notifications.services import admin_alert_raise


def _cost(config: AgentConfig | None, prompt: int | None, completion: int | None) -> Decimal | None:
    if config is None or not (config.price_prompt_per_1k or config.price_completion_per_1k):
        return None
    prompt_cost = Decimal(prompt or 0) * config.price_prompt_per_1k
    return (prompt_cost + Decimal(completion or 0) * config.price_completion_per_1k) / 1000


def agent_call_record(
    *,
    tenant_id: int,
    provider: str,
    purpose: str,
    customer_id: int | None,
    conversation_id: int | None,
    success: bool,
    duration_ms: float,
    error: str = "",
    model: str = "",
    usage: dict | None = None,
    tool_calls: int = 0,
    config: AgentConfig | None = None,
    counted_locally: bool = False,
) -> AgentCall:
    """Store one call with its tokens (the LLM usage row); the cost is the provider's, else priced from the config."""
    usage = usage or {}
    cost = usage.get("cost")
    try:
        cost = Decimal(str(cost)) if cost not in (None, "") else None
    except InvalidOperation:
        cost = None

    def _int(name: str) -> int | None:
        value = usage.get(name)
        return value if isinstance(value, int) and value >= 0 else None

    prompt, completion, total = _int("prompt_tokens"), _int("completion_tokens"), _int("total_tokens")
    if total is None and (prompt is not None or completion is not None):
        total = (prompt or 0) + (completion or 0)
    if cost is None and total:
        cost = _cost(config, prompt, completion)
    call = AgentCall.objects.create(
        tenant_id=tenant_id,
        provider=provider,
        purpose=purpose,
        customer_id=customer_id,
        conversation_id=conversation_id,
        success=success,
        error=error[:500],
        duration_ms=round(duration_ms, 1),
        model=model[:128],
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        cost=cost,
        tool_calls=tool_calls,
        tokens_counted_locally=counted_locally,
    )
    if total and config is not None and config.monthly_token_quota:
        llm_quota_alert_check(config=config)
    return call


def _month_key(now=None) -> str:
    return (now or timezone.now()).strftime("%Y-%m")


def llm_quota_alert_check(*, config: AgentConfig) -> str:
    """Raise the month's 80 % / 100 % admin alert once each (deduplicated); return the quota state."""
    state = llm_quota_state(config=config)
    if state["state"] == "ok":
        return "ok"
    month = _month_key()
    full = state["state"] == "exceeded"
    admin_alert_raise(
        tenant_id=config.tenant_id,
        source="llm_quota",
        code="llm_quota_exceeded" if full else "llm_quota_warning",
        message=(
            f"the monthly LLM token quota is spent ({state['used']}/{state['monthly_tokens']}): "
            "AI features fall back to templates until next month or a higher quota"
            if full
            else f"{state['used']} of {state['monthly_tokens']} monthly LLM tokens used"
        ),
        dedupe_key=f"llm_quota:{config.tenant_id}:{month}:{'100' if full else '80'}",
        details={"used": state["used"], "monthly_tokens": state["monthly_tokens"], "month": month},
        level=AdminAlert.Level.ERROR if full else AdminAlert.Level.WARNING,
    )
    return state["state"]
