"""The built-in agent: the customer's profile from our MCP server, rendered into a template.

It is the default so that a fresh install greets customers by name with no outside service.
"""

from __future__ import annotations

from anmei.ai.mcp_client import MCPCallError, mcp_tool_call
from anmei.ai.providers import AgentError, AgentRequest, AgentResult
from anmei.ai.templating import template_render


def run(request: AgentRequest) -> AgentResult:
    if request.purpose != "welcome":
        raise AgentError("the local agent writes welcomes only; replies need an LLM provider")
    if request.mcp is None:
        raise AgentError("no MCP key for the local agent")
    try:
        profile = mcp_tool_call(
            request.mcp, "get_user_profile", {"user_id": request.customer_id}, timeout=request.timeout
        )
    except MCPCallError as exc:
        raise AgentError(f"get_user_profile failed: {exc}") from None
    if not isinstance(profile, dict) or profile.get("error"):
        raise AgentError("get_user_profile returned no profile")
    values = {k: v for k, v in profile.items() if isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    values["nickname"] = profile.get("nickname") or profile.get("username") or ""
    text = template_render(request.welcome_template, values).strip()
    if not text:
        raise AgentError("empty welcome")
    return AgentResult(text=text, model="local-template", tool_calls=1)
