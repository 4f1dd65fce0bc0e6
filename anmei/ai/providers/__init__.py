"""Agent providers behind the AI gateway: each turns an AgentRequest into text or AgentError."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from anmei.ai.mcp_client import MCPEndpoint
from anmei.common import outbound

logger = logging.getLogger("anmei.ai")


class AgentError(Exception):
    """The agent could not produce a text (down, 5xx, timeout, bad answer, tool failure).

    Its message is stored (AgentCall.error) and shown to the tenant (dashboard, admin): a category
    and an HTTP status only, never bytes of the upstream answer (an oracle into whatever the
    tenant's base URL points at). Build status errors with `upstream_status_error`.
    """


def upstream_status_error(who: str, response, *, tenant_id: int | None) -> AgentError:
    """An AgentError for a non-200 answer: its status for the tenant, the scrubbed body for our logs."""
    try:
        body = response.text
    except Exception:  # noqa: BLE001 - an unread or undecodable stream: the status still counts
        body = ""
    logger.warning(
        f"{who} error answer",
        extra={"tenant_id": tenant_id, "status": response.status_code, "body": outbound.scrub(body)},
    )
    return AgentError(f"{who} answered {response.status_code}")


@dataclass(frozen=True)
class AgentRequest:
    tenant_id: int
    customer_id: int
    conversation_id: int | None
    purpose: str  # "welcome", "reply", "summary" or "suggestion"
    query: str
    base_url: str
    app_id: str
    api_key: str
    model: str
    timeout: float
    welcome_template: str
    mcp: MCPEndpoint | None
    messages: list[dict[str, Any]] | None = None  # from the context builder (every purpose but welcome)
    json_mode: bool = False
    on_delta: Callable[[str], None] | None = None  # streaming: called with each text fragment
    bot_id: int | None = None  # the conversation's bot (astrbot provider)
    max_tokens: int = 800


@dataclass
class AgentResult:
    text: str
    model: str = ""
    usage: dict[str, Any] = field(default_factory=dict)
    tool_calls: int = 0


def api_url(base_url: str, path: str) -> str:
    """Join an API root and a `/v1/...` path, accepting roots given with or without `/v1`."""
    base = outbound.join(base_url, "")
    if base.endswith("/v1") and path.startswith("/v1/"):
        path = path[3:]
    return base + path


def provider_run(provider: str, request: AgentRequest) -> AgentResult:
    from anmei.ai.providers import astrbot, dify, local, openai_compat

    runners = {"local": local.run, "dify": dify.run, "openai": openai_compat.run, "astrbot": astrbot.run}
    runner = runners.get(provider)
    if runner is None:
        raise AgentError(f"unknown provider {provider!r}")
    return runner(request)


def transcript(messages: list[dict[str, Any]]) -> str:
    """A chat context as one text, for providers that take a single query (Dify)."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)
