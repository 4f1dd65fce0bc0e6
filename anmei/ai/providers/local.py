"""The built-in agent: the customer's profile from our MCP server, rendered into a template.

It is the default so that a fresh install greets customers by name with no outside service. When
the profile tool fails (the MCP sidecar down), the welcome is still personal: it is written from
what the platform itself knows of the customer (nickname, channel), and says so in its model name.
"""

from __future__ import annotations

from anmei.ai.mcp_client import MCPCallError, mcp_tool_call
from anmei.ai.providers.base import AgentError, AgentRequest, AgentResult
from anmei.ai.providers.fallback import PLATFORM_MODEL_SUFFIX, platform_profile, profile_render


def run(request: AgentRequest) -> AgentResult:
    if request.purpose != "welcome":
        raise AgentError("the local agent writes welcomes only; replies need an LLM provider")
    if request.mcp is None:
        raise AgentError("no MCP key for the local agent")
    model, tool_calls = "local-template", 1
    try:
        profile = mcp_tool_call(
            request.mcp, "get_user_profile", {"user_id": request.customer_id}, timeout=request.timeout
        )
    except MCPCallError:
        profile = None
    if not isinstance(profile, dict) or profile.get("error"):  # the tool failed: what the platform knows
        profile = platform_profile(tenant_id=request.tenant_id, customer_id=request.customer_id)
        model, tool_calls = f"local-template-{PLATFORM_MODEL_SUFFIX}", 0
    if not isinstance(profile, dict):
        raise AgentError("get_user_profile returned no profile")
    text = profile_render(request.welcome_template, profile)
    if not text:
        raise AgentError("empty welcome")
    return AgentResult(text=text, model=model, tool_calls=tool_calls)
