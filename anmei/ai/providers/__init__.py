"""Agent providers behind the AI gateway: each turns an AgentRequest into text or AgentError.

The shared types live in `base` (the providers import them from there, so no provider imports
this package back); this module picks the provider a tenant configured.
"""

from __future__ import annotations

from anmei.ai.providers import astrbot, dify, local, openai_compat
from anmei.ai.providers.base import (
    AgentError,
    AgentRequest,
    AgentResult,
    api_url,
    transcript,
    upstream_status_error,
)

__all__ = [
    "AgentError",
    "AgentRequest",
    "AgentResult",
    "api_url",
    "provider_run",
    "transcript",
    "upstream_status_error",
]

RUNNERS = {"local": local.run, "dify": dify.run, "openai": openai_compat.run, "astrbot": astrbot.run}


def provider_run(provider: str, request: AgentRequest) -> AgentResult:
    runner = RUNNERS.get(provider)
    if runner is None:
        raise AgentError(f"unknown provider {provider!r}")
    return runner(request)
