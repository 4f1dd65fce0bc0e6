"""A small synchronous client for our MCP sidecar, used by the gateway's local and openai providers.

Each call opens one streamable-HTTP session with the official SDK (group key as Bearer token, the
gateway's caller app id, and a subject token that binds the call to one customer so an LLM cannot
be talked into reading someone else's profile), does its work and closes it. Workers are
synchronous, so the async SDK runs in a private event loop per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from anmei.common.metrics import MCP_CALL_SECONDS
from anmei.mcp_admin.subject import subject_token_issue


class MCPCallError(Exception):
    """The sidecar was unreachable, refused the call, or the tool returned an error."""


@dataclass(frozen=True)
class MCPEndpoint:
    url: str
    group_key: str
    caller_app_id: str
    subject: str = ""

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.group_key}", "X-Caller-App-Id": self.caller_app_id}
        if self.subject:
            headers["X-Anmei-Subject"] = self.subject
        return headers


def subject_token(*, tenant_id: int, customer_id: int) -> str:
    """Return a short-lived subject token that binds an MCP call to one customer of one tenant."""
    return subject_token_issue(tenant_id=tenant_id, customer_id=customer_id, ttl_seconds=300)


_SSL_CONTEXT = None


def _ssl_context():
    """One TLS context per process: building it costs ~35 ms, more than the MCP call itself."""
    global _SSL_CONTEXT
    if _SSL_CONTEXT is None:
        import ssl

        _SSL_CONTEXT = ssl.create_default_context()
    return _SSL_CONTEXT


def default_url() -> str:
    return settings.MCP_URL


def _result_payload(result: Any) -> Any:
    """Turn a CallToolResult into JSON data (structured content first, else the text parts)."""
    if getattr(result, "is_error", False) or getattr(result, "isError", False):
        texts = [getattr(c, "text", "") for c in result.content or []]
        raise MCPCallError("tool error: " + " ".join(t for t in texts if t)[:300])
    structured = getattr(result, "structured_content", None) or getattr(result, "structuredContent", None)
    if structured is not None:
        if isinstance(structured, dict) and set(structured) == {"result"}:
            return structured["result"]
        return structured
    texts = [getattr(c, "text", "") for c in result.content or []]
    text = "".join(texts)
    try:
        return json.loads(text)
    except ValueError:
        return text


@contextlib.asynccontextmanager
async def mcp_session(endpoint: MCPEndpoint, timeout: float):
    """Open one initialised SDK session (async); the whole tool loop of a provider runs inside it."""
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers=endpoint.headers(), timeout=timeout, verify=_ssl_context()) as http:
        async with streamable_http_client(endpoint.url, http_client=http) as streams:
            async with ClientSession(streams[0], streams[1]) as session:
                await session.initialize()
                yield session


async def session_tools(session) -> list[dict[str, Any]]:
    """Return the tools the key's group may call, as {name, description, input_schema} dicts."""
    listed = await session.list_tools()
    return [
        {
            "name": t.name,
            "description": t.description or "",
            "input_schema": getattr(t, "input_schema", None) or getattr(t, "inputSchema", None) or {},
        }
        for t in listed.tools
    ]


async def session_call(session, name: str, arguments: dict[str, Any]) -> Any:
    return _result_payload(await session.call_tool(name, arguments))


def run_async(coro, timeout: float):
    """Run `coro` to completion in a private loop within `timeout`; MCPCallError on any failure.

    Exceptions from the SDK arrive wrapped in anyio exception groups; the caller only needs to
    know that the agent path failed and why, in one line.
    """

    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    try:
        return asyncio.run(bounded())
    except MCPCallError:
        raise
    except BaseException as exc:  # noqa: BLE001
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise MCPCallError(_describe(exc)) from None


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, MCPCallError):
        return str(exc)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:300]


def mcp_tool_call(endpoint: MCPEndpoint, name: str, arguments: dict[str, Any], *, timeout: float = 5.0) -> Any:
    """Call one tool synchronously and return its JSON payload; MCPCallError on any failure."""

    async def work():
        async with mcp_session(endpoint, timeout) as session:
            return await session_call(session, name, arguments)

    started = time.perf_counter()
    outcome = "error"
    try:
        result = run_async(work(), timeout)
        outcome = "ok"
        return result
    finally:
        MCP_CALL_SECONDS.labels(side="client", outcome=outcome).observe(time.perf_counter() - started)
