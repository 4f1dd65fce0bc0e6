"""The AI gateway: one door to whichever agent a tenant configured (local, Dify, OpenAI-compatible).

Callers never see provider failures: `generate_welcome` reports them in its result so the
automation can fall back to its template, and `generate_reply` returns None so a bot sends its
away message. A per tenant+provider circuit breaker skips an agent that keeps failing.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings

from anmei.ai import breaker
from anmei.ai.mcp_client import MCPEndpoint, default_url, subject_token
from anmei.ai.models import AgentConfig
from anmei.ai.providers import AgentError, AgentRequest, provider_run
from anmei.ai.services import agent_call_record, agent_config_get_or_create, agent_config_mcp_key

logger = logging.getLogger("anmei.ai")


@dataclass(frozen=True)
class AgentOutcome:
    """What the gateway got: `text` is None when the agent was disabled, open-circuited or failed."""

    text: str | None
    provider: str
    error: str = ""
    duration_ms: float = 0.0


WELCOME_QUERY = "新用户 {customer_id} 刚刚注册，请生成个性化欢迎消息"


def _request(
    config: AgentConfig, *, customer_id: int, conversation_id: int | None, purpose: str, query: str
) -> AgentRequest:
    mcp = None
    if config.provider in (AgentConfig.Provider.LOCAL, AgentConfig.Provider.OPENAI):
        key = agent_config_mcp_key(config=config)
        if key:
            mcp = MCPEndpoint(
                url=default_url(),
                group_key=key,
                caller_app_id=config.app_id or settings.AI_GATEWAY_CALLER_APP_ID,
                subject=subject_token(tenant_id=config.tenant_id, customer_id=customer_id),
            )
    else:
        mcp = MCPEndpoint(
            url="",
            group_key="",
            caller_app_id=config.app_id,
            subject=subject_token(tenant_id=config.tenant_id, customer_id=customer_id),
        )
    return AgentRequest(
        tenant_id=config.tenant_id,
        customer_id=customer_id,
        conversation_id=conversation_id,
        purpose=purpose,
        query=query,
        base_url=config.base_url,
        app_id=config.app_id,
        api_key=config.api_key,
        model=config.model,
        timeout=config.timeout_seconds,
        welcome_template=config.welcome_template,
        mcp=mcp,
    )


def agent_run(
    *, tenant_id: int, customer_id: int, conversation_id: int | None, purpose: str, query: str
) -> AgentOutcome:
    """Ask the tenant's agent once, recording the call, its tokens and the breaker's view of it."""
    config = agent_config_get_or_create(tenant_id=tenant_id)
    provider = config.provider
    if not config.enabled:
        return AgentOutcome(text=None, provider=provider, error="agent_disabled")
    if provider == AgentConfig.Provider.LOCAL and purpose != "welcome":
        return AgentOutcome(text=None, provider=provider, error="local_agent_writes_welcomes_only")
    if not breaker.breaker_allows(tenant_id=tenant_id, provider=provider):
        return AgentOutcome(text=None, provider=provider, error="circuit_open")
    started = time.perf_counter()
    try:
        request = _request(
            config, customer_id=customer_id, conversation_id=conversation_id, purpose=purpose, query=query
        )
        result = provider_run(provider, request)
    except AgentError as exc:
        duration_ms = (time.perf_counter() - started) * 1000
        error = str(exc)[:500] or "agent_error"
        agent_call_record(
            tenant_id=tenant_id,
            provider=provider,
            purpose=purpose,
            customer_id=customer_id,
            conversation_id=conversation_id,
            success=False,
            duration_ms=duration_ms,
            error=error,
        )
        opened = breaker.breaker_record_failure(
            tenant_id=tenant_id,
            provider=provider,
            threshold=config.breaker_threshold,
            cooldown_seconds=config.breaker_cooldown_seconds,
        )
        logger.warning(
            "agent call failed",
            extra={
                "tenant_id": tenant_id,
                "provider": provider,
                "purpose": purpose,
                "error": error,
                "breaker_opened": opened,
            },
        )
        return AgentOutcome(text=None, provider=provider, error=error, duration_ms=duration_ms)
    duration_ms = (time.perf_counter() - started) * 1000
    agent_call_record(
        tenant_id=tenant_id,
        provider=provider,
        purpose=purpose,
        customer_id=customer_id,
        conversation_id=conversation_id,
        success=True,
        duration_ms=duration_ms,
        model=result.model,
        usage=result.usage,
        tool_calls=result.tool_calls,
    )
    breaker.breaker_record_success(tenant_id=tenant_id, provider=provider)
    return AgentOutcome(text=result.text, provider=provider, duration_ms=duration_ms)


def generate_welcome(*, tenant_id: int, customer_id: int, conversation_id: int | None) -> AgentOutcome:
    return agent_run(
        tenant_id=tenant_id,
        customer_id=customer_id,
        conversation_id=conversation_id,
        purpose="welcome",
        query=WELCOME_QUERY.format(customer_id=customer_id),
    )


def generate_reply(*, tenant_id: int, customer_id: int, conversation_id: int, text: str) -> str | None:
    """Answer a customer's message with the tenant's agent, or None so the caller sends its away message."""
    try:
        return agent_run(
            tenant_id=tenant_id, customer_id=customer_id, conversation_id=conversation_id, purpose="reply", query=text
        ).text
    except Exception:  # noqa: BLE001 - a bot must always be able to fall back to its away message
        logger.exception("agent reply failed", extra={"tenant_id": tenant_id, "conversation_id": conversation_id})
        return None
