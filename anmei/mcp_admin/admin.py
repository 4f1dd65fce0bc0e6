"""Django admin for MCP groups, tools, call logs (read-only) and key audit records (read-only)."""

from __future__ import annotations

from django.contrib import admin, messages

from anmei.audit.admin import AuditedAdminMixin
from anmei.common.admin import ReadOnlyAdminMixin, TenantScopedAdmin
from anmei.common.errors import ApplicationError
from anmei.common.permissions import is_operator
from anmei.mcp_admin import services
from anmei.mcp_admin.models import MCPCallLog, MCPKeyAudit, MCPTool, MCPToolGroup


class MCPToolInline(admin.TabularInline):
    model = MCPTool
    fields = ("tool_name", "enabled", "timeout_seconds", "version")
    readonly_fields = ("tool_name",)
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False  # tool rows are created with the first group and moved, not added here


@admin.register(MCPToolGroup)
class MCPToolGroupAdmin(AuditedAdminMixin, TenantScopedAdmin):
    audit_object_type = "mcp_group"
    audit_secret_fields = ("key_hash", "key_encrypted")

    list_display = ("id", "name", "tenant", "enabled", "key_prefix", "created_by", "created_at")
    list_filter = ("enabled", "tenant")
    search_fields = ("name", "description", "key_prefix")
    fields = ("tenant", "name", "description", "enabled", "key_prefix", "created_by", "created_at", "updated_at")
    readonly_fields = ("key_prefix", "created_by", "created_at", "updated_at")
    inlines = [MCPToolInline]
    actions = ("view_keys", "enable_groups", "disable_groups", "regenerate_keys")

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []  # a new group gets its tools from the service

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("tenant", "name", "description") if is_operator(request.user) else ("name", "description")
        return super().get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        # New groups go through the service so they get a key and the tenant's tool rows.
        tenant = obj.tenant if is_operator(request.user) else request.user.tenant
        group, key = services.mcp_group_create(
            tenant=tenant, name=obj.name, description=obj.description, created_by=request.user
        )
        obj.pk = group.pk
        obj.__dict__.update({k: v for k, v in group.__dict__.items() if not k.startswith("_")})
        messages.warning(request, f"Key of group '{group.name}' (shown once here; viewing it again is audited): {key}")

    @admin.action(description="View keys of selected groups (each view is audited)")
    def view_keys(self, request, queryset):
        for group in queryset:
            try:
                key = services.mcp_group_key_view(group=group, actor=request.user)
            except ApplicationError as exc:
                messages.error(request, f"Group '{group.name}': {exc.message}")
                continue
            messages.warning(request, f"Key of group '{group.name}' (this view is recorded): {key}")

    @admin.action(description="Enable selected groups")
    def enable_groups(self, request, queryset):
        queryset.update(enabled=True)

    @admin.action(description="Disable selected groups (their keys stop working on the next call)")
    def disable_groups(self, request, queryset):
        queryset.update(enabled=False)

    @admin.action(description="Regenerate keys of selected groups (old keys stop working at once)")
    def regenerate_keys(self, request, queryset):
        for group in queryset:
            key = services.mcp_group_key_regenerate(group=group, actor=request.user)
            messages.warning(request, f"New key of group '{group.name}': {key}")


@admin.register(MCPTool)
class MCPToolAdmin(AuditedAdminMixin, TenantScopedAdmin):
    audit_object_type = "mcp_tool"

    list_display = ("id", "tool_name", "tenant", "group", "enabled", "timeout_seconds", "version", "updated_at")
    list_filter = ("enabled", "tool_name", "tenant")
    search_fields = ("tool_name", "description")
    readonly_fields = ("tenant", "tool_name", "created_at", "updated_at")
    actions = ("enable_tools", "disable_tools")

    def has_add_permission(self, request):
        return False

    @admin.action(description="Enable selected tools")
    def enable_tools(self, request, queryset):
        queryset.update(enabled=True)

    @admin.action(description="Disable selected tools")
    def disable_tools(self, request, queryset):
        queryset.update(enabled=False)


@admin.register(MCPCallLog)
class MCPCallLogAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("created_at", "tool_name", "group", "caller_app_id", "success", "error_code", "duration_ms")
    list_filter = ("success", "tool_name", "group", "error_code", "created_at")
    search_fields = ("caller_app_id", "error")
    date_hierarchy = "created_at"

    def has_delete_permission(self, request, obj=None):
        return is_operator(request.user)


@admin.register(MCPKeyAudit)
class MCPKeyAuditAdmin(ReadOnlyAdminMixin, TenantScopedAdmin):
    list_display = ("created_at", "group", "action", "actor", "tenant")
    list_filter = ("action", "tenant")

    def has_delete_permission(self, request, obj=None):
        return False
