"""Writes for MCP access control: groups and their keys, tool rows, key audit records.

The sidecar reads these rows on every call (no cache), so every change here is effective on the
very next MCP call without telling the sidecar anything.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction

from anmei.accounts.models import User
from anmei.audit.services import SECRET, audit_changes, audit_record, audit_snapshot
from anmei.common.crypto import decrypt, encrypt, hash_token, new_token
from anmei.common.errors import ApplicationError
from anmei.mcp_admin.models import MCPKeyAudit, MCPTool, MCPToolGroup, ToolName
from anmei.tenants.models import Tenant

logger = logging.getLogger("anmei.mcp_admin")

KEY_PREFIX = "mcp_key_"
TOOL_NAMES: tuple[str, ...] = tuple(ToolName.values)
_DISPLAY_PREFIX_LEN = 12


def _new_key() -> tuple[str, dict[str, str]]:
    """Return a fresh key and the stored fields for it (hash, encrypted copy, display prefix)."""
    key = new_token(KEY_PREFIX, 32)
    return key, {"key_hash": hash_token(key), "key_encrypted": encrypt(key), "key_prefix": key[:_DISPLAY_PREFIX_LEN]}


def _check_tool_names(tool_names: list[str] | None) -> None:
    unknown = sorted(set(tool_names or []) - set(TOOL_NAMES))
    if unknown:
        raise ApplicationError(
            "unknown_tool", f"unknown tool names: {', '.join(unknown)}", details={"tool_names": unknown}
        )


def _audit(group: MCPToolGroup, actor: User | None, action: str) -> None:
    MCPKeyAudit.objects.create(tenant_id=group.tenant_id, group=group, actor=actor, action=action)
    changes = {"key": [None, SECRET]} if action != MCPKeyAudit.Action.VIEW else {}
    if action == MCPKeyAudit.Action.REGENERATE:
        changes = {"key": [SECRET, SECRET]}
    audit_record(
        tenant_id=group.tenant_id,
        action=f"key_{action}",
        object_type="mcp_group",
        object_id=group.pk,
        changes=changes,
        actor=actor,
    )
    logger.info(
        "mcp key %s",
        action,
        extra={"tenant_id": group.tenant_id, "group_id": group.pk, "actor_id": getattr(actor, "pk", None)},
    )


@transaction.atomic
def mcp_group_create(
    *,
    tenant: Tenant,
    name: str,
    description: str = "",
    created_by: User | None = None,
    tool_names: list[str] | None = None,
) -> tuple[MCPToolGroup, str]:
    """Create a group with a fresh key and return it with the plain key (shown to the caller only now).

    Each tenant has one row per tool. The rows are created with the tenant's first group (in that
    group; enabled when `tool_names` is None or names them, else disabled). Tools named in
    `tool_names` are then moved into the new group and enabled.
    """
    _check_tool_names(tool_names)
    name = name.strip()
    if not name:
        raise ApplicationError("validation_error", "name: must not be empty", details={"fields": {"name": ["empty"]}})
    key, key_fields = _new_key()
    try:
        with transaction.atomic():
            group = MCPToolGroup.objects.create(
                tenant=tenant, name=name, description=description, created_by=created_by, **key_fields
            )
    except IntegrityError as exc:
        raise ApplicationError(
            "group_name_taken", f"a group named '{name}' already exists", status_code=409, details={"field": "name"}
        ) from exc

    existing = set(MCPTool.objects.filter(tenant=tenant).values_list("tool_name", flat=True))
    for tool_name in TOOL_NAMES:
        if tool_name not in existing:
            MCPTool.objects.create(
                tenant=tenant,
                tool_name=tool_name,
                group=group,
                enabled=tool_names is None or tool_name in tool_names,
            )
    if tool_names:
        MCPTool.objects.filter(tenant=tenant, tool_name__in=tool_names).update(group=group, enabled=True)
    _audit(group, created_by, MCPKeyAudit.Action.CREATE)
    return group, key


def mcp_group_update(*, group: MCPToolGroup, data: dict[str, Any]) -> MCPToolGroup:
    """Rename, describe, enable or disable a group; a disabled group's key is refused on the next call."""
    fields = [f for f in ("name", "description", "enabled") if f in data]
    before = audit_snapshot(group, fields)
    for field in fields:
        setattr(group, field, data[field].strip() if field == "name" else data[field])
    try:
        with transaction.atomic():
            group.save()
            audit_record(
                tenant_id=group.tenant_id,
                action="update",
                object_type="mcp_group",
                object_id=group.pk,
                changes=audit_changes(before, audit_snapshot(group, fields)),
            )
    except IntegrityError as exc:
        raise ApplicationError(
            "group_name_taken",
            f"a group named '{group.name}' already exists",
            status_code=409,
            details={"field": "name"},
        ) from exc
    logger.info("mcp group updated", extra={"tenant_id": group.tenant_id, "group_id": group.pk})
    return group


@transaction.atomic
def mcp_group_key_view(*, group: MCPToolGroup, actor: User | None) -> str:
    """Return the group's plain key and record that `actor` saw it."""
    try:
        key = decrypt(group.key_encrypted)
    except ValueError as exc:  # encryption key rotated: the stored copy is unreadable
        raise ApplicationError(
            "key_unreadable", "the stored key cannot be decrypted; regenerate it", status_code=409
        ) from exc
    _audit(group, actor, MCPKeyAudit.Action.VIEW)
    return key


@transaction.atomic
def mcp_group_key_regenerate(*, group: MCPToolGroup, actor: User | None) -> str:
    """Replace the group's key; the old key fails on its very next call (the sidecar reads the hash per call)."""
    group = MCPToolGroup.objects.select_for_update().get(pk=group.pk)
    key, key_fields = _new_key()
    for field, value in key_fields.items():
        setattr(group, field, value)
    group.save(update_fields=[*key_fields, "updated_at"])
    _audit(group, actor, MCPKeyAudit.Action.REGENERATE)
    return key


def mcp_tool_update(*, tool: MCPTool, data: dict[str, Any]) -> MCPTool:
    """Move a tool to another group of the same tenant, or change its switch, timeout, text or config."""
    fields = ["group_id", "enabled", "timeout_seconds", "description", "config_data", "version"]
    before = audit_snapshot(tool, fields)
    if "group_id" in data and data["group_id"] != tool.group_id:
        group = MCPToolGroup.objects.filter(pk=data["group_id"], tenant_id=tool.tenant_id).first()
        if group is None:
            raise ApplicationError(
                "group_not_found", "no such group in this tenant", status_code=400, details={"field": "group_id"}
            )
        tool.group = group
    for field in ("enabled", "timeout_seconds", "description", "config_data", "version"):
        if field in data:
            setattr(tool, field, data[field])
    with transaction.atomic():
        tool.save()
        audit_record(
            tenant_id=tool.tenant_id,
            action="update",
            object_type="mcp_tool",
            object_id=tool.pk,
            changes=audit_changes(before, audit_snapshot(tool, fields)),
        )
    logger.info(
        "mcp tool updated",
        extra={"tenant_id": tool.tenant_id, "tool_id": tool.pk, "tool_name": tool.tool_name, "group_id": tool.group_id},
    )
    return tool
