"""How the fake agents reach our MCP sidecar: the official SDK over streamable HTTP, like Dify does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

_SSL = []


def _ssl_context():
    if not _SSL:
        import ssl

        _SSL.append(ssl.create_default_context())
    return _SSL[0]


def mcp_call(
    url: str,
    key: str,
    tool: str,
    arguments: dict[str, Any],
    *,
    caller_app_id: str,
    subject: str = "",
    timeout: float = 10.0,
) -> Any:
    import httpx2
    from mcp.client.session import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    headers = {"Authorization": f"Bearer {key}", "X-Caller-App-Id": caller_app_id}
    if subject:
        headers["X-Anmei-Subject"] = subject

    async def work():
        async with httpx2.AsyncClient(headers=headers, timeout=timeout, verify=_ssl_context()) as http:
            async with streamable_http_client(url, http_client=http) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await session.initialize()
                    result = await session.call_tool(tool, arguments)
        if result.is_error:
            raise RuntimeError("mcp tool error: " + " ".join(getattr(c, "text", "") for c in result.content))
        if result.structured_content is not None:
            return result.structured_content
        return json.loads("".join(getattr(c, "text", "") for c in result.content))

    return asyncio.run(asyncio.wait_for(work(), timeout))
