"""Admin reads of groups and tools: tenant admins see their tenant, operators every tenant."""

from __future__ import annotations

from django.db.models import QuerySet

from anmei.accounts.models import User
from anmei.common.errors import NotFoundError
from anmei.common.permissions import is_operator
from anmei.mcp_admin.models import MCPTool, MCPToolGroup


def _scoped(qs: QuerySet, actor: User, tenant_id: int | None = None) -> QuerySet:
    if is_operator(actor):
        return qs.filter(tenant_id=tenant_id) if tenant_id else qs
    if actor.role == User.Role.ADMIN and actor.tenant_id:
        return qs.filter(tenant_id=actor.tenant_id)
    return qs.none()


def group_list(*, actor: User, tenant_id: int | None = None) -> QuerySet[MCPToolGroup]:
    return _scoped(MCPToolGroup.objects.prefetch_related("tools"), actor, tenant_id).order_by("tenant_id", "id")


def group_get(*, actor: User, group_id: int) -> MCPToolGroup:
    """Return the group or a 404, also for another tenant's group (no existence leak)."""
    group = _scoped(MCPToolGroup.objects.prefetch_related("tools"), actor).filter(pk=group_id).first()
    if group is None:
        raise NotFoundError("group")
    return group


def tool_list(*, actor: User, group_id: int | None = None, tenant_id: int | None = None) -> QuerySet[MCPTool]:
    qs = _scoped(MCPTool.objects.select_related("group"), actor, tenant_id)
    if group_id is not None:
        qs = qs.filter(group_id=group_id)
    return qs.order_by("tenant_id", "id")


def tool_get(*, actor: User, tool_id: int) -> MCPTool:
    tool = _scoped(MCPTool.objects.select_related("group"), actor).filter(pk=tool_id).first()
    if tool is None:
        raise NotFoundError("tool")
    return tool
