"""The sidecar's per-call access decision, read fresh from the database on every call.

No cache on purpose: disabling a group or tool, moving a tool or regenerating a key must take
effect on the very next call (two indexed look-ups cost well under a millisecond).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from anmei.common.crypto import hash_token, tokens_equal
from anmei.mcp_admin.models import MCPTool, MCPToolGroup
from anmei.tenants.models import Tenant


@dataclass(frozen=True)
class CallGrant:
    tenant_id: int
    group_id: int
    tool_id: int
    tool_name: str
    timeout_seconds: int
    config_data: dict[str, Any] = field(default_factory=dict)


class CallRefused(Exception):
    """A refusal with a stable `code`; tenant/group are known once the key matched a group."""

    def __init__(self, code: str, message: str, *, tenant_id: int | None = None, group_id: int | None = None):
        self.code = code
        self.message = message
        self.tenant_id = tenant_id
        self.group_id = group_id
        super().__init__(message)


def _grant(tool: MCPTool) -> CallGrant:
    return CallGrant(
        tenant_id=tool.tenant_id,
        group_id=tool.group_id,
        tool_id=tool.pk,
        tool_name=tool.tool_name,
        timeout_seconds=tool.timeout_seconds,
        config_data=tool.config_data or {},
    )


def _allowed_sql() -> str:
    tool, group, tenant = MCPTool._meta.db_table, MCPToolGroup._meta.db_table, Tenant._meta.db_table
    return (
        f"SELECT t.id, t.tenant_id, t.group_id, t.tool_name, t.timeout_seconds, t.config_data, g.key_hash "
        f"FROM {tool} t JOIN {group} g ON g.id = t.group_id JOIN {tenant} tn ON tn.id = g.tenant_id "
        f"WHERE g.key_hash = %s AND t.tool_name = %s AND t.enabled AND g.enabled "
        f"AND tn.status = %s AND t.tenant_id = g.tenant_id"
    )


def mcp_call_authorize(*, key: str | None, tool_name: str) -> CallGrant:
    """Decide whether `key` may call `tool_name` now: key → group enabled → tool in group → tool enabled.

    The allowed case is one hand-written query (this runs before every tool call: the ORM's query
    building cost more CPU than the query itself, see bench/mcp_latency.py); only a refusal pays
    for the step-by-step ORM look-ups that name the reason.
    """
    if not key:
        raise CallRefused("missing_key", "an 'Authorization: Bearer mcp_key_…' header is required")
    digest = hash_token(key)
    with connection.cursor() as cursor:
        cursor.execute(_allowed_sql(), [digest, tool_name, Tenant.Status.APPROVED])
        row = cursor.fetchone()
    if row is not None and tokens_equal(row[6], digest):
        tool_id, tenant_id, group_id, name, timeout_seconds, config_data, _ = row
        if isinstance(config_data, str):
            config_data = json.loads(config_data)
        return CallGrant(
            tenant_id=tenant_id,
            group_id=group_id,
            tool_id=tool_id,
            tool_name=name,
            timeout_seconds=timeout_seconds,
            config_data=config_data or {},
        )
    return _refusal_reason(digest, tool_name)


def _refusal_reason(digest: str, tool_name: str) -> CallGrant:
    group = MCPToolGroup.objects.select_related("tenant").filter(key_hash=digest).first()
    if group is None or not tokens_equal(group.key_hash, digest):
        raise CallRefused("invalid_key", "the MCP key is not valid")
    ids = {"tenant_id": group.tenant_id, "group_id": group.pk}
    if not group.tenant.is_active:
        raise CallRefused("tenant_inactive", "the tenant of this key is not active", **ids)
    if not group.enabled:
        raise CallRefused("group_disabled", "the tool group of this key is disabled", **ids)
    tool = MCPTool.objects.filter(tenant_id=group.tenant_id, tool_name=tool_name, group_id=group.pk).first()
    if tool is None:
        raise CallRefused("tool_not_in_group", f"tool '{tool_name}' is not in this key's group", **ids)
    if not tool.enabled:
        raise CallRefused("tool_disabled", f"tool '{tool_name}' is disabled", **ids)
    return _grant(tool)  # changed between the two reads: it is allowed now


def mcp_key_is_known(*, key: str | None) -> bool:
    """Does `key` belong to a tool group at all (enabled or not)? Unknown keys are refused at connect."""
    if not key:
        return False
    digest = hash_token(key)
    stored = MCPToolGroup.objects.filter(key_hash=digest).values_list("key_hash", flat=True).first()
    return stored is not None and tokens_equal(stored, digest)


def mcp_key_tool_names(*, key: str | None) -> set[str]:
    """Names of the tools `key` may call right now (empty for an unknown key or a disabled group).

    Used for tools/list, so an agent is only offered what its calls would be allowed to do.
    """
    if not key:
        return set()
    digest = hash_token(key)
    rows = MCPTool.objects.filter(
        group__key_hash=digest, enabled=True, group__enabled=True, group__tenant__status=Tenant.Status.APPROVED
    ).values_list("tool_name", "group__key_hash")
    return {name for name, stored in rows if tokens_equal(stored, digest)}
