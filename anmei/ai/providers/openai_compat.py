"""Any OpenAI-compatible `/v1/chat/completions` model, with our MCP tools as function tools.

The gateway runs the tool-call loop itself: the model asks for a tool, we call it on our MCP
server (group key + subject token, so only this customer's data is reachable), feed the result
back and repeat until the model answers with text or the round limit is hit.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from anmei.ai.mcp_client import MCPCallError, _ssl_context, mcp_session, run_async, session_call, session_tools
from anmei.ai.providers import AgentError, AgentRequest, AgentResult, api_url
from anmei.common import outbound

logger = logging.getLogger("anmei.ai.openai")

MAX_TOOL_ROUNDS = 4

SYSTEM_PROMPTS = {
    "welcome": (
        "你是安美智享的AI咨询助手。新用户刚刚注册。请先调用 get_user_profile 获取用户资料，"
        "然后用用户的昵称写一段简短、亲切的个性化欢迎消息。只输出欢迎消息本身。"
    ),
    "reply": "你是安美智享的AI咨询助手，用简短、专业、友好的中文回答医美相关问题。需要时可调用工具获取客户资料。",
}


def run(request: AgentRequest) -> AgentResult:
    if not request.base_url or not request.model:
        raise AgentError("openai provider needs a base URL and a model")
    try:
        outbound.preflight(request.base_url)  # refused before we open an MCP session for nothing
        return run_async(_run(request), request.timeout)
    except outbound.OutboundError as exc:
        raise AgentError(f"model unreachable: {exc.category}") from None
    except MCPCallError as exc:
        raise AgentError(str(exc)) from None


async def _run(request: AgentRequest) -> AgentResult:
    import httpx2

    headers = {"Authorization": f"Bearer {request.api_key}"} if request.api_key else {}
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPTS.get(request.purpose, SYSTEM_PROMPTS["reply"])},
        {"role": "user", "content": request.query},
    ]
    usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    reported = False
    tool_calls = 0
    url = api_url(request.base_url, "/v1/chat/completions")
    # The base URL is tenant-configured: the guarded client (SSRF rules, no redirects).
    async with outbound.async_client(timeout=request.timeout, headers=headers, verify=_ssl_context()) as llm:
        if request.mcp is None:
            raise AgentError("no MCP key for the openai provider")
        async with mcp_session(request.mcp, request.timeout) as session:
            tools = [
                {
                    "type": "function",
                    "function": {
                        "name": t["name"],
                        "description": t["description"],
                        "parameters": t["input_schema"] or {"type": "object", "properties": {}},
                    },
                }
                for t in await session_tools(session)
            ]
            model = request.model
            for _round in range(MAX_TOOL_ROUNDS + 1):
                body: dict[str, Any] = {"model": request.model, "messages": messages}
                if tools:
                    body["tools"] = tools
                try:
                    response = await llm.post(url, json=body)
                except httpx2.TimeoutException:
                    raise AgentError("timeout") from None
                except httpx2.HTTPError as exc:
                    raise AgentError(f"model unreachable: {outbound.async_category(exc)}") from None
                if response.status_code != 200:
                    logger.warning(
                        "model error answer",
                        extra={
                            "tenant_id": request.tenant_id,
                            "status": response.status_code,
                            "body": outbound.scrub(response.text),
                        },
                    )
                    raise AgentError(f"model answered {response.status_code}")  # never the body
                try:
                    data = response.json()
                    message = data["choices"][0]["message"]
                except (ValueError, KeyError, IndexError, TypeError):
                    raise AgentError("model answered an unexpected body") from None
                model = data.get("model") or model
                for key in usage:
                    value = (data.get("usage") or {}).get(key)
                    if isinstance(value, int):
                        usage[key] += value
                        reported = True
                calls = message.get("tool_calls") or []
                if not calls:
                    text = (message.get("content") or "").strip()
                    if not text:
                        raise AgentError("model answered without text")
                    return AgentResult(text=text, model=model, usage=usage if reported else {}, tool_calls=tool_calls)
                messages.append({"role": "assistant", "content": message.get("content"), "tool_calls": calls})
                for call in calls:
                    tool_calls += 1
                    function = call.get("function") or {}
                    try:
                        arguments = json.loads(function.get("arguments") or "{}")
                        result = await session_call(session, function.get("name", ""), arguments)
                        content = json.dumps(result, ensure_ascii=False, default=str)
                    except (ValueError, MCPCallError) as exc:
                        content = json.dumps({"error": str(exc)[:200]})
                    messages.append({"role": "tool", "tool_call_id": call.get("id", ""), "content": content})
    raise AgentError("tool loop did not finish")
