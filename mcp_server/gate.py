"""The HTTP door's key check: a missing or unknown key gets 401 before any MCP message is handled.

Without it an agent with a mistyped key "connected" and saw an empty tool list. Keys of disabled
groups still connect (their calls are refused with `group_disabled`, which says what to fix);
every HTTP request is checked, so a regenerated key fails on the very next request of an open
session. A refused `tools/call` is still written to the call log, as the per-call checks do.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils import timezone
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from starlette.requests import Request

from anmei.mcp_admin.selectors.access import mcp_key_is_known
from mcp_server.auth import CALLER_HEADER
from mcp_server.calllog import writer
from mcp_server.db import run_db

MAX_PEEK_BYTES = 64 * 1024  # enough to read a refused call's tool name for the log


def _bearer(headers: dict[str, str]) -> str | None:
    scheme, _, value = headers.get("authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


async def _read_body(receive) -> bytes:
    body = b""
    while len(body) <= MAX_PEEK_BYTES:
        message = await receive()
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    return body


def _tool_name(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("method") == "tools/call":
        name = (data.get("params") or {}).get("name")
        return str(name)[:100] if name else None
    return None


class KeyGate:
    """ASGI middleware in front of the streamable HTTP app.

    The Host/Origin check (DNS-rebinding protection, the same settings the SDK's transport uses)
    comes first: a request from a page on another origin is refused as such (421/403) before any
    key is looked up.
    """

    def __init__(self, app, *, security: TransportSecuritySettings | None = None) -> None:
        self.app = app
        self.security = TransportSecurityMiddleware(security) if security is not None else None

    async def __call__(self, scope: dict[str, Any], receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.security is not None:
            refused = await self.security.validate_request(Request(scope), is_post=False)
            if refused is not None:
                await refused(scope, receive, send)
                return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        key = _bearer(headers)
        if key and await run_db(mcp_key_is_known, key=key):
            await self.app(scope, receive, send)
            return
        code = "invalid_key" if key else "missing_key"
        message = "unknown MCP key" if key else "an 'Authorization: Bearer mcp_key_…' header is required"
        tool = _tool_name(await _read_body(receive)) if scope.get("method") == "POST" else None
        if tool is not None:
            writer.record(
                {
                    "tenant_id": None,
                    "group_id": None,
                    "tool_name": tool,
                    "caller_app_id": headers.get(CALLER_HEADER, "")[:100],
                    "request": {},
                    "response": {},
                    "success": False,
                    "error_code": code,
                    "error": message,
                    "duration_ms": 0,
                    "subject_customer_id": None,
                    "created_at": timezone.now(),
                }
            )
        body = json.dumps(
            {"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message, "data": {"code": code}}}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", f'Bearer error="{code}"'.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
