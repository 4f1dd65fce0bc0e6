"""Any OpenAI-compatible `/v1/chat/completions` model, with our MCP tools as function tools.

The gateway runs the tool-call loop itself: the model asks for a tool, we call it on our MCP
server (group key + subject token, so only this customer's data is reachable), feed the result
back and repeat until the model answers with text or the round limit is hit. When the MCP part
fails before the model was asked (the sidecar down), the welcome or reply is still written: one
tool-less completion, told what the platform already knows of the customer (`fallback`). Summaries and
suggestions come without tools (`request.mcp` is None) over a per-thread keep-alive client, no
event loop; with `on_delta` set they stream (SSE, `stream: true`) and each text fragment is handed
to the callback as it arrives.
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import httpx2

from anmei.ai.mcp_client import MCPCallError, _ssl_context, mcp_session, run_async, session_call, session_tools
from anmei.ai.providers.base import AgentError, AgentRequest, AgentResult, api_url, upstream_status_error
from anmei.ai.providers.fallback import PLATFORM_MODEL_SUFFIX, platform_facts
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
WELCOME_WITHOUT_TOOLS = (
    "你是安美智享的AI咨询助手。新用户刚刚注册。客户资料工具暂不可用，平台已知的客户资料如下。\n"
    "客户昵称：{nickname}\n注册渠道：{channel}\n"
    "请用客户的昵称写一段简短、亲切的个性化欢迎消息。只输出欢迎消息本身。"
)


def run(request: AgentRequest) -> AgentResult:
    if not request.base_url or not request.model:
        raise AgentError("openai provider needs a base URL and a model")
    if request.mcp is None and request.purpose not in ("welcome", "reply"):
        messages = (
            [dict(m) for m in request.messages] if request.messages else [{"role": "user", "content": request.query}]
        )
        return _complete(request, messages)
    progress = {"tools_listed": False}
    try:
        outbound.preflight(request.base_url)  # refused before we open an MCP session for nothing
        return run_async(_run(request, progress), request.timeout)
    except outbound.OutboundError as exc:
        raise AgentError(f"model unreachable: {exc.category}") from None
    except MCPCallError as exc:
        if request.mcp is None or progress["tools_listed"]:
            raise AgentError(str(exc)) from None
    # The MCP part failed before the model was asked: the same answer without tools.
    logger.warning("mcp tools unavailable, answering without them", extra={"tenant_id": request.tenant_id})
    result = _complete(request, _without_tools(request))
    result.model = f"{result.model}+{PLATFORM_MODEL_SUFFIX}"
    return result


def _without_tools(request: AgentRequest) -> list[dict[str, Any]]:
    """The messages of a tool-less answer: the welcome gets the platform's facts in its prompt."""
    if request.purpose == "welcome":
        system = WELCOME_WITHOUT_TOOLS.format(**platform_facts(request))
        return [{"role": "system", "content": system}, {"role": "user", "content": request.query}]
    if request.messages:
        return [dict(m) for m in request.messages]
    return [{"role": "system", "content": SYSTEM_PROMPTS["reply"]}, {"role": "user", "content": request.query}]


async def _run(request: AgentRequest, progress: dict[str, bool]) -> AgentResult:

    headers = {"Authorization": f"Bearer {request.api_key}"} if request.api_key else {}
    if request.messages:
        messages: list[dict[str, Any]] = [dict(m) for m in request.messages]
    else:
        messages = [
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
            progress["tools_listed"] = True
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
                    raise upstream_status_error("model", response, tenant_id=request.tenant_id)
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


def _usage(data: dict) -> dict:
    usage = data.get("usage") or {}
    keys = ("prompt_tokens", "completion_tokens", "total_tokens")
    return {k: usage[k] for k in keys if isinstance(usage.get(k), int)}


_local = threading.local()


def _client() -> httpx2.Client:
    """One keep-alive client per worker thread: no event loop, TLS context or connection per call."""
    client = getattr(_local, "client", None)
    if client is None:
        client = _local.client = outbound.sync_client(verify=_ssl_context())
    return client


def _complete(request: AgentRequest, messages: list[dict[str, Any]]) -> AgentResult:
    """One tool-less completion (summaries, suggestions), streamed when the caller wants fragments."""
    url = api_url(request.base_url, "/v1/chat/completions")
    headers = {"Authorization": f"Bearer {request.api_key}"} if request.api_key else {}
    body: dict[str, Any] = {"model": request.model, "messages": messages, "max_tokens": request.max_tokens}
    if request.json_mode:
        body["response_format"] = {"type": "json_object"}
    try:
        if request.on_delta is None:
            return _answer(_client().post(url, json=body, headers=headers, timeout=request.timeout), request)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        with _client().stream("POST", url, json=body, headers=headers, timeout=request.timeout) as response:
            return _streamed(response, request)
    except httpx2.TimeoutException:
        raise AgentError("timeout") from None
    except AgentError:
        raise
    except httpx2.HTTPError as exc:  # network, refused destination, broken stream: a category only
        raise AgentError(f"model unreachable: {outbound.async_category(exc)}") from None


def _answer(response, request: AgentRequest) -> AgentResult:
    if response.status_code != 200:
        raise upstream_status_error("model", response, tenant_id=request.tenant_id)
    try:
        data = response.json()
        text = (data["choices"][0]["message"].get("content") or "").strip()
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        raise AgentError("model answered an unexpected body") from None
    if not text:
        raise AgentError("model answered without text")
    return AgentResult(text=text, model=data.get("model") or request.model, usage=_usage(data))


def _streamed(response, request: AgentRequest) -> AgentResult:
    """Read server-sent `chat.completion.chunk`s, handing each text fragment to `on_delta`."""
    if response.status_code != 200:
        response.read()
        raise upstream_status_error("model", response, tenant_id=request.tenant_id)
    parts: list[str] = []
    model, usage = request.model, {}
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if payload == "[DONE]":
            break
        try:
            chunk = json.loads(payload)
        except ValueError:
            raise AgentError("model streamed an unexpected chunk") from None
        model = chunk.get("model") or model
        usage = _usage(chunk) or usage
        for choice in chunk.get("choices") or []:
            fragment = (choice.get("delta") or {}).get("content")
            if fragment:
                parts.append(fragment)
                request.on_delta(fragment)
    text = "".join(parts).strip()
    if not text:
        raise AgentError("model answered without text")
    return AgentResult(text=text, model=model, usage=usage)
