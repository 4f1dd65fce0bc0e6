"""Writes for the AI gateway: a tenant's agent configuration and the record of each call."""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone

from anmei.ai.models import AgentCall, AgentConfig, CannedResponse
from anmei.ai.selectors import agent_config_default
from anmei.audit.services import audit_changes, audit_record, audit_snapshot
from anmei.common.errors import ApplicationError
from anmei.mcp_admin.services import mcp_group_create
from anmei.tenants.models import Tenant

logger = logging.getLogger("anmei.ai")

SECRET_FIELDS = ("api_key", "mcp_group_key")
GATEWAY_MCP_GROUP = "ai-gateway"
GATEWAY_MCP_TOOLS = ["get_user_profile", "analyze_customer", "get_conversation_data"]


def agent_config_get_or_create(*, tenant_id: int) -> AgentConfig:
    """Return the tenant's agent configuration, creating the offline default (local) on first use."""
    config = AgentConfig.objects.filter(tenant_id=tenant_id).first()
    if config is not None:
        return config
    try:
        with transaction.atomic():
            config = agent_config_default(tenant_id=tenant_id)
            config.save(force_insert=True)
            return config
    except IntegrityError:
        return AgentConfig.objects.get(tenant_id=tenant_id)


def agent_config_update(
    *, config: AgentConfig, api_key: str | None = None, mcp_group_key: str | None = None, **fields
) -> AgentConfig:
    """Change a configuration; secrets are given in clear here and stored encrypted."""
    names = [*fields, *(["api_key"] if api_key is not None else []), *(["mcp_group_key"] if mcp_group_key else [])]
    with transaction.atomic():
        before = audit_snapshot(config, names)
        for name, value in fields.items():
            setattr(config, name, value)
        if api_key is not None:
            config.api_key = api_key
        if mcp_group_key is not None:
            config.mcp_group_key = mcp_group_key
        config.save()
        audit_record(
            tenant_id=config.tenant_id,
            action="update",
            object_type="agent_config",
            object_id=config.pk,
            changes=audit_changes(before, audit_snapshot(config, names), secrets=SECRET_FIELDS),
        )
    return config


def agent_config_mcp_key(*, config: AgentConfig) -> str:
    """Return the MCP group key the gateway calls our sidecar with, provisioning a group once.

    A tenant that configured nothing still gets personalised welcomes: on first need the gateway
    creates its own tool group and keeps the key (encrypted). The row lock makes concurrent
    first runs create one group, not several.
    """
    if config.mcp_group_key_encrypted:
        return config.mcp_group_key
    with transaction.atomic():
        locked = AgentConfig.objects.select_for_update().get(pk=config.pk)
        if locked.mcp_group_key_encrypted:
            return locked.mcp_group_key
        name = GATEWAY_MCP_GROUP
        tenant = Tenant.objects.get(pk=config.tenant_id)
        for attempt in range(3):
            try:
                with transaction.atomic():
                    _group, key = mcp_group_create(
                        tenant=tenant,
                        name=name,
                        description="Used by the AI gateway (registration welcomes, bot replies)",
                        tool_names=GATEWAY_MCP_TOOLS,
                    )
                break
            except Exception:  # noqa: BLE001 - a name clash with an admin-made group: pick another
                name = f"{GATEWAY_MCP_GROUP}-{config.pk}-{attempt + 1}"
        else:
            return ""
        locked.mcp_group_key = key
        locked.save(update_fields=["mcp_group_key_encrypted", "updated_at"])
        logger.info("ai gateway mcp group provisioned", extra={"tenant_id": config.tenant_id, "group": name})
    config.mcp_group_key_encrypted = locked.mcp_group_key_encrypted
    return key


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
    from anmei.ai.selectors import llm_quota_state
    from anmei.notifications.models import AdminAlert
    from anmei.notifications.services import admin_alert_raise

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


def canned_response_create(*, tenant_id: int, shortcode: str, text: str, keywords: list[str]) -> CannedResponse:
    try:
        with transaction.atomic():
            return CannedResponse.objects.create(
                tenant_id=tenant_id, shortcode=shortcode, text=text, keywords=_clean_keywords(keywords)
            )
    except IntegrityError as exc:
        raise _shortcode_taken(shortcode) from exc


def canned_response_update(*, response: CannedResponse, **fields) -> CannedResponse:
    if "keywords" in fields:
        fields["keywords"] = _clean_keywords(fields["keywords"])
    for name, value in fields.items():
        setattr(response, name, value)
    try:
        with transaction.atomic():
            response.save()
    except IntegrityError as exc:
        raise _shortcode_taken(response.shortcode) from exc
    return response


def canned_response_delete(*, response: CannedResponse) -> None:
    response.delete()


def _clean_keywords(keywords: list[str]) -> list[str]:
    seen: list[str] = []
    for word in keywords:
        word = word.strip()
        if word and word not in seen:
            seen.append(word)
    return seen


def _shortcode_taken(shortcode: str) -> ApplicationError:
    return ApplicationError(
        "shortcode_taken",
        f"a canned response /{shortcode} exists",
        status_code=409,
        details={"field": "shortcode"},
    )
