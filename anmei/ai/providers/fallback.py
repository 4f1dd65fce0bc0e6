"""What every agent falls back on when part of it fails: the customer as the platform knows them.

The welcome degrades in steps (docs/architecture.md, "Degradation"): the agent with its profile
tool; the agent without the tool, given what the platform already knows (nickname, channel); the
tenant's agent template rendered with those facts when the agent itself cannot answer; and only
then the generic automation template. This module holds the two middle steps' shared parts, so
the built-in agent, the external providers and the gateway read the same facts the same way.
"""

from __future__ import annotations

from anmei.accounts.models import User
from anmei.ai.providers.base import AgentRequest
from anmei.ai.templating import template_render

PLATFORM_MODEL_SUFFIX = "platform-profile"  # in the model name of a welcome written without the tool


def platform_profile(*, tenant_id: int, customer_id: int) -> dict | None:
    """The customer as the platform's own database knows them (tenant-scoped): never another tenant's."""
    return User.objects.filter(pk=customer_id, tenant_id=tenant_id).values("username", "nickname", "source").first()


def platform_facts(request: AgentRequest) -> dict[str, str]:
    """Nickname and channel for a provider's prompt or inputs; empty when the customer is unknown."""
    profile = platform_profile(tenant_id=request.tenant_id, customer_id=request.customer_id) or {}
    return {
        "nickname": profile.get("nickname") or profile.get("username") or "",
        "channel": profile.get("source") or "",
    }


def profile_render(template: str, profile: dict | None) -> str:
    """A welcome template rendered with a profile's plain values (`{nickname}` falls back to the username)."""
    if not isinstance(profile, dict):
        return ""
    values = {k: v for k, v in profile.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    values["nickname"] = profile.get("nickname") or profile.get("username") or ""
    return template_render(template, values).strip()


def platform_welcome(*, tenant_id: int, customer_id: int, template: str) -> str:
    """The agent template rendered from the platform's facts ("" when the customer is unknown)."""
    return profile_render(template, platform_profile(tenant_id=tenant_id, customer_id=customer_id))
