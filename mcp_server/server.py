"""The MCP server and its one call pipeline (auth, logging and monitoring around every tool call).

Every tools/call goes through `AnmeiMCPServer.call_tool`:
    credentials (Bearer key, X-Caller-App-Id, X-Anmei-Subject)
    → key → group enabled → tool in group and enabled → subject token   (fresh DB read, no cache)
    → argument validation → tool run under the tool's timeout_seconds
    → result, and one call-log row queued for the background writer.
Each refusal is a tool result with `is_error=True` whose structured content is
`{"error": {"code": …, "message": …}}`, so an agent (and a test) can tell why.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import anyio
from django.conf import settings
from django.utils import timezone
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, ListToolsResult, TextContent
from pydantic import ValidationError

from anmei.ai.masking import Masker
from anmei.common.metrics import MCP_CALL_SECONDS
from anmei.mcp_admin.selectors.access import CallRefused, mcp_key_tool_names
from mcp_server import tools
from mcp_server.auth import CUSTOMER_LEVEL_TOOLS, CallScope, call_authorize, credentials_from
from mcp_server.calllog import writer
from mcp_server.db import run_db

logger = logging.getLogger("mcp_server")

INSTRUCTIONS = (
    "Anmei clinic data for assistants. Every tool reads only the tenant of your key; when your call is "
    "bound to a customer (X-Anmei-Subject), customer tools answer only for that customer."
)


def error_result(code: str, message: str) -> CallToolResult:
    payload = {"error": {"code": code, "message": message}}
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload, ensure_ascii=False))],
        structured_content=payload,
        is_error=True,
    )


def _find_cause(exc: BaseException) -> BaseException | None:
    seen = exc
    while seen is not None:
        if isinstance(seen, (CallRefused, ValidationError)):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _redacted(value: Any) -> Any:
    """The shape of a value without its text: ids, numbers and flags stay, strings become their length."""
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value[:20]] + ([f"[{len(value) - 20} more]"] if len(value) > 20 else [])
    if isinstance(value, str):
        return f"[redacted: {len(value)} chars]"
    return value


def _loggable(value: Any, *, redact: bool = False) -> Any:
    """Keep call-log JSON bounded: a huge response is summarised, not stored whole.

    Responses carry customer PII (profiles, messages): with MCP_LOG_RESPONSES=redacted (the default)
    the log keeps their shape, not their text; `full` stores them (still truncated).
    """
    if redact and settings.MCP_LOG_RESPONSES != "full":
        value = _redacted(value)
    text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) <= settings.MCP_LOG_MAX_JSON_CHARS:
        return value
    return {"truncated": True, "chars": len(text), "head": text[: settings.MCP_LOG_MAX_JSON_CHARS // 4]}


def _masked(result: CallToolResult) -> CallToolResult:
    """The tool's answer with phone, ID-card, e-mail and card numbers as placeholders: whoever reads
    MCP answers is an LLM agent (docs/privacy.md)."""
    masker = Masker(tag="T")
    content = [
        item.model_copy(update={"text": masker.mask(item.text)}) if isinstance(item, TextContent) else item
        for item in result.content
    ]
    structured = masker.mask_value(result.structured_content) if result.structured_content is not None else None
    return result.model_copy(update={"content": content, "structured_content": structured})


class AnmeiMCPServer(MCPServer):
    """MCPServer with the call pipeline in `call_tool` and a per-key `tools/list`.

    `call_tool` wraps the SDK's public `MCPServer.call_tool` (argument validation + run). The
    per-key list has no public hook: `_handle_list_tools` is the low-level list handler bound in
    MCPServer.__init__ (checked against mcp 2.3.0; re-check it when upgrading the SDK,
    tests/test_mcp_sidecar.py covers it).
    """

    async def _handle_list_tools(self, ctx, params) -> ListToolsResult:
        """List only the tools the caller's key may call now (and, for a customer-bound call, only
        the customer-level ones), so an agent is never offered a tool that would be refused."""
        credentials = credentials_from(getattr(ctx, "request", None))
        allowed = await run_db(mcp_key_tool_names, key=credentials.key)
        if credentials.subject_token:
            allowed &= CUSTOMER_LEVEL_TOOLS
        return ListToolsResult(tools=[tool for tool in await self.list_tools() if tool.name in allowed])

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None) -> CallToolResult:
        """Run one tools/call through the pipeline; always returns a result, never raises."""
        started = time.perf_counter()
        request = None
        if context is not None:
            try:
                request = context.request_context.request
            except ValueError:  # no request context (direct in-process call)
                request = None
        credentials = credentials_from(request)
        scope: CallScope | None = None
        tenant_id = group_id = None
        try:
            try:
                scope = await run_db(call_authorize, credentials=credentials, tool_name=name)
            except CallRefused as exc:
                tenant_id, group_id = exc.tenant_id, exc.group_id
                raise
            tenant_id, group_id = scope.tenant_id, scope.grant.group_id
            token = tools.current_scope.set(scope)
            try:
                with anyio.fail_after(scope.grant.timeout_seconds):
                    result = _masked(await super().call_tool(name, arguments, context))
            finally:
                tools.current_scope.reset(token)
        except TimeoutError:
            result = error_result("timeout", f"'{name}' exceeded its {scope.grant.timeout_seconds} s timeout")
        except CallRefused as exc:
            result = error_result(exc.code, exc.message)
        except ToolError as exc:
            cause = _find_cause(exc)
            if isinstance(cause, CallRefused):
                result = error_result(cause.code, cause.message)
            elif isinstance(cause, ValidationError):
                fields = sorted({".".join(str(p) for p in err["loc"]) for err in cause.errors()})
                result = error_result("invalid_arguments", f"invalid arguments: {', '.join(fields)}")
            else:
                logger.exception("mcp tool failed", extra={"tool_name": name, "tenant_id": tenant_id})
                result = error_result("internal_error", f"'{name}' failed unexpectedly")
        except Exception:
            logger.exception("mcp pipeline failed", extra={"tool_name": name, "tenant_id": tenant_id})
            result = error_result("internal_error", f"'{name}' failed unexpectedly")

        duration_ms = int((time.perf_counter() - started) * 1000)
        MCP_CALL_SECONDS.labels(side="server", outcome="error" if result.is_error else "ok").observe(
            time.perf_counter() - started
        )
        error = (result.structured_content or {}).get("error", {}) if result.is_error else {}
        writer.record(
            {
                "tenant_id": tenant_id,
                "group_id": group_id,
                "tool_name": name[:100],
                "caller_app_id": credentials.caller_app_id,
                "request": _loggable(arguments),
                "response": _loggable(result.structured_content or {}, redact=True),
                "success": not result.is_error,
                "error_code": error.get("code", "")[:64],
                "error": error.get("message", ""),
                "duration_ms": duration_ms,
                "subject_customer_id": scope.subject_customer_id if scope else None,
                "created_at": timezone.now(),
            }
        )
        if result.is_error:
            logger.info(
                "mcp call refused",
                extra={"tool_name": name, "tenant_id": tenant_id, "group_id": group_id, "code": error.get("code")},
            )
        return result


def build_server() -> AnmeiMCPServer:
    server = AnmeiMCPServer("anmei", instructions=INSTRUCTIONS, version="1.0.0", log_level="WARNING")
    for fn in tools.TOOLS:
        server.add_tool(fn)
    return server
