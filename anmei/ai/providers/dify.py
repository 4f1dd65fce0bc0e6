"""Dify apps through the real chat-messages API (blocking mode).

The Dify agent itself calls our MCP server (configured in Dify with the tenant's MCP group key)
to read the profile; we pass the ids it needs as `inputs`, and for a welcome what the platform
already knows (`nickname`, `channel`), so an app whose profile tool fails (our sidecar down) still
greets the customer by name instead of failing (docs/architecture.md, "Degradation"). Dify's own
conversation id is kept per Anmei conversation in Redis so that later replies continue the same
Dify conversation.
"""

from __future__ import annotations

import logging

from anmei.ai.providers.base import AgentError, AgentRequest, AgentResult, api_url, transcript, upstream_status_error
from anmei.ai.providers.fallback import platform_facts
from anmei.common import outbound
from anmei.common.redis import get_redis, tenant_key

logger = logging.getLogger("anmei.ai.dify")


def _conversation_key(request: AgentRequest) -> str:
    return tenant_key(request.tenant_id, "dify_conversation", request.conversation_id or 0)


def run(request: AgentRequest) -> AgentResult:
    if not request.base_url or not request.api_key:
        raise AgentError("dify needs a base URL and an app key")
    dify_conversation = ""
    if request.conversation_id and request.purpose in ("welcome", "reply"):
        dify_conversation = get_redis().get(_conversation_key(request)) or ""
    body = {
        "inputs": {
            "tenant_id": str(request.tenant_id),
            "user_id": str(request.customer_id),
            "conversation_id": str(request.conversation_id or ""),
            "purpose": request.purpose,
            "is_new_user": "true" if request.purpose == "welcome" else "false",
            "anmei_subject": request.mcp.subject if request.mcp else "",
            **(platform_facts(request) if request.purpose == "welcome" else {}),
        },
        # Replies continue Dify's own conversation (it keeps the history); summaries and
        # suggestions need the whole built context, so they send it as the query.
        "query": transcript(request.messages)
        if request.messages and request.purpose in ("summary", "suggestion")
        else request.query,
        "response_mode": "blocking",
        "user": f"anmei-{request.tenant_id}-{request.customer_id}",
        "conversation_id": dify_conversation,
    }
    try:
        # The base URL is tenant-configured: the guarded client (SSRF rules, no redirects).
        response = outbound.post(
            api_url(request.base_url, "/v1/chat-messages"),
            json=body,
            headers={"Authorization": f"Bearer {request.api_key}"},
            timeout=request.timeout,
        )
    except outbound.OutboundError as exc:
        raise AgentError(exc.category if exc.category == "timeout" else f"dify unreachable: {exc.category}") from None
    if response.status_code != 200:
        raise upstream_status_error("dify", response, tenant_id=request.tenant_id)
    try:
        data = response.json()
    except ValueError:
        raise AgentError("dify answered non-JSON") from None
    answer = (data.get("answer") or "").strip() if isinstance(data, dict) else ""
    if not answer:
        raise AgentError("dify answered without text")
    if data.get("conversation_id") and request.conversation_id and request.purpose in ("welcome", "reply"):
        get_redis().set(_conversation_key(request), data["conversation_id"], ex=30 * 24 * 3600)
    usage = ((data.get("metadata") or {}).get("usage") or {}) if isinstance(data.get("metadata"), dict) else {}
    return AgentResult(
        text=answer,
        model="dify",
        usage={
            "prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "total_tokens": usage.get("total_tokens"),
            "cost": usage.get("total_price"),
        },
    )
