"""The AI gateway: one door to whichever agent a tenant configured (local, Dify, OpenAI-compatible, AstrBot).

Callers never see provider failures: `welcome_generate` reports them in its result, with the
welcome written from what the platform knows when the agent could not answer (the automation's
generic template is only its last step, docs/architecture.md "Degradation"), and `reply_generate`
returns None so a bot sends its away message. A per tenant+provider circuit breaker skips an
agent that keeps failing. Every call but the welcome gets its messages from the context builder;
every call is metered (AgentCall, the LLM usage rows) against the tenant's monthly token quota,
and a spent quota means "no text" (the caller's fallback) plus an admin alert — never an error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from django.conf import settings

from anmei.ai import breaker, tokens
from anmei.ai.context import budget_for, context_build
from anmei.ai.masking import Masker
from anmei.ai.mcp_client import MCPEndpoint, default_url, subject_token
from anmei.ai.models import AgentConfig
from anmei.ai.providers import AgentError, AgentRequest, provider_run
from anmei.ai.providers.fallback import PLATFORM_MODEL_SUFFIX, platform_welcome
from anmei.ai.selectors import llm_quota_state
from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_mcp_key
from anmei.ai.services.metering import agent_call_record, llm_quota_alert_check
from anmei.ai.templating import message_cap

logger = logging.getLogger("anmei.ai")


@dataclass(frozen=True)
class AgentOutcome:
    """What the gateway got: `text` is None when the agent was disabled, open-circuited or failed."""

    text: str | None
    provider: str
    error: str = ""
    duration_ms: float = 0.0
    model: str = ""
    degraded: bool = False  # the agent failed (`error`); `text` is the platform-profile welcome


WELCOME_QUERY = "新用户 {customer_id} 刚刚注册，请生成个性化欢迎消息"
REPLY_PROMPT = "你是安美智享的AI咨询助手，用简短、专业、友好的中文回答医美相关问题。需要时可调用工具获取客户资料。"
TOOL_PURPOSES = ("welcome", "reply")  # summaries and suggestions read only the conversation
MESSAGE_PURPOSES = ("welcome", "reply")  # what the agent writes here is sent as a message


def _request(
    config: AgentConfig,
    *,
    customer_id: int,
    conversation_id: int | None,
    purpose: str,
    query: str,
    messages: list[dict] | None = None,
    json_mode: bool = False,
    on_delta=None,
    bot_id: int | None = None,
) -> AgentRequest:
    mcp = None
    if purpose not in TOOL_PURPOSES:
        mcp = None
    elif config.provider in (AgentConfig.Provider.LOCAL, AgentConfig.Provider.OPENAI):
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
        messages=messages,
        json_mode=json_mode,
        on_delta=on_delta if config.stream else None,
        bot_id=bot_id,
        max_tokens=settings.AI_COMPLETION_MAX_TOKENS,
    )


def agent_run(
    *,
    tenant_id: int,
    customer_id: int,
    conversation_id: int | None,
    purpose: str,
    query: str,
    system_prompt: str = REPLY_PROMPT,
    json_mode: bool = False,
    on_delta=None,
    bot_id: int | None = None,
) -> AgentOutcome:
    """Ask the tenant's agent once, recording the call, its tokens and the breaker's view of it.

    `query` is the welcome request, or the customer's newest words (appended to the built context
    when the conversation's history does not already end with them).
    """
    config = agent_config_get_or_create(tenant_id=tenant_id)
    provider = config.provider
    if not config.enabled:
        return AgentOutcome(text=None, provider=provider, error="agent_disabled")
    if provider == AgentConfig.Provider.LOCAL and purpose != "welcome":
        return AgentOutcome(text=None, provider=provider, error="local_agent_writes_welcomes_only")
    if config.monthly_token_quota and llm_quota_state(config=config)["state"] == "exceeded":
        llm_quota_alert_check(config=config)
        logger.warning("llm quota exceeded", extra={"tenant_id": tenant_id, "purpose": purpose})
        return AgentOutcome(text=None, provider=provider, error="quota_exceeded")
    if not breaker.breaker_allows(tenant_id=tenant_id, provider=provider):
        return AgentOutcome(text=None, provider=provider, error="circuit_open")
    started = time.perf_counter()
    built = None
    if purpose != "welcome":
        try:
            built = context_build(
                tenant_id=tenant_id,
                conversation_id=conversation_id,
                system_prompt=system_prompt,
                budget=budget_for(provider=provider, configured=config.context_token_budget),
                latest_customer_text=query,
            )
        except Exception:  # noqa: BLE001 - no context, no call: the caller's template/local path answers now
            logger.exception(
                "agent context failed",
                extra={"tenant_id": tenant_id, "purpose": purpose, "conversation_id": conversation_id},
            )
            return AgentOutcome(text=None, provider=provider, error="context_unavailable")
    record = {
        "tenant_id": tenant_id,
        "provider": provider,
        "purpose": purpose,
        "customer_id": customer_id,
        "conversation_id": conversation_id,
        "config": config,
    }
    # No personal data leaves for an LLM: placeholders out, originals back in (docs/privacy.md).
    masker = Masker()
    masked_messages = masker.mask_messages(built.messages if built else None)  # history first: stable numbering
    try:
        request = _request(
            config,
            customer_id=customer_id,
            conversation_id=conversation_id,
            purpose=purpose,
            query=masker.mask(query),
            messages=masked_messages,
            json_mode=json_mode,
            on_delta=masker.stream(on_delta),
            bot_id=bot_id,
        )
        result = provider_run(provider, request)
    except AgentError as exc:
        duration_ms = (time.perf_counter() - started) * 1000
        error = str(exc)[:500] or "agent_error"
        agent_call_record(**record, success=False, duration_ms=duration_ms, error=error)
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
                "conversation_id": conversation_id,
                "error": error,
                "breaker_opened": opened,
                "duration_ms": round(duration_ms, 1),
            },
        )
        return AgentOutcome(text=None, provider=provider, error=error, duration_ms=duration_ms)
    duration_ms = (time.perf_counter() - started) * 1000
    usage = dict(result.usage or {})
    counted_locally = not isinstance(usage.get("total_tokens"), int) and not isinstance(usage.get("prompt_tokens"), int)
    if counted_locally:  # the provider reported nothing: meter with our offline tokenizer
        prompt = built.prompt_tokens if built else tokens.count_text(query)
        completion = tokens.count_text(result.text)
        usage.update(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion)
    agent_call_record(
        **record,
        success=True,
        duration_ms=duration_ms,
        model=result.model,
        usage=usage,
        tool_calls=result.tool_calls,
        counted_locally=counted_locally,
    )
    breaker.breaker_record_success(tenant_id=tenant_id, provider=provider)
    logger.info(
        "agent call",
        extra={
            "tenant_id": tenant_id,
            "provider": provider,
            "purpose": purpose,
            "conversation_id": conversation_id,
            "duration_ms": round(duration_ms, 1),
            "total_tokens": usage.get("total_tokens"),
            "masked_values": masker.count,
        },
    )
    # A welcome or a reply becomes a message: at most MESSAGE_MAX_CHARS whatever the agent wrote.
    answer = masker.unmask(result.text)
    text = message_cap(answer) if purpose in MESSAGE_PURPOSES and answer else answer
    return AgentOutcome(text=text, provider=provider, duration_ms=duration_ms, model=result.model)


# The agent is off on purpose: its template fallback is the tenant's choice, not a degradation.
NOT_DEGRADED = ("agent_disabled",)


def welcome_generate(*, tenant_id: int, customer_id: int, conversation_id: int | None) -> AgentOutcome:
    """The agent's welcome; when the agent fails, its template rendered with the platform's facts.

    Outcome text None only when even that is impossible (customer unknown, empty render) or the
    agent is disabled: the caller's generic template is the last step.
    """
    outcome = agent_run(
        tenant_id=tenant_id,
        customer_id=customer_id,
        conversation_id=conversation_id,
        purpose="welcome",
        query=WELCOME_QUERY.format(customer_id=customer_id),
    )
    if outcome.text or outcome.error in NOT_DEGRADED:
        return outcome
    config = agent_config_get_or_create(tenant_id=tenant_id)
    text = platform_welcome(tenant_id=tenant_id, customer_id=customer_id, template=config.welcome_template)
    if not text:
        return outcome
    logger.info(
        "welcome from the platform profile",
        extra={"tenant_id": tenant_id, "customer_id": customer_id, "agent_error": outcome.error},
    )
    return AgentOutcome(
        text=message_cap(text),
        provider=outcome.provider,
        error=outcome.error,
        duration_ms=outcome.duration_ms,
        model=PLATFORM_MODEL_SUFFIX,
        degraded=True,
    )


def reply_generate(
    *, tenant_id: int, customer_id: int, conversation_id: int, text: str, bot_id: int | None = None
) -> str | None:
    """Answer a customer's message with the tenant's agent, or None so the caller sends its away message.

    Provider failures, an open breaker and a spent quota are outcomes (None), not exceptions.
    """
    outcome = agent_run(
        tenant_id=tenant_id,
        customer_id=customer_id,
        conversation_id=conversation_id,
        purpose="reply",
        query=text,
        bot_id=bot_id,
    )
    return outcome.text.strip() if outcome.text and outcome.text.strip() else None
