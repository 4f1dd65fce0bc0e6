"""AI gateway reads, tenant-scoped; they never write (the gateway's services create on first use)."""

from __future__ import annotations

from django.conf import settings

from anmei.ai.models import AgentConfig


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
