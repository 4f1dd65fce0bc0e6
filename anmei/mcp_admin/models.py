"""MCP access control: tool groups with their own key, tool rows, call logs, key audit.

A tenant has at most one row per tool name (`MCPTool`), living in exactly one of its groups; moving
a tool between groups is an update of that row. A group's key is stored twice: a SHA-256 hash for
look-up and a Fernet-encrypted copy so that an admin can view it again (audited).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ToolName(models.TextChoices):
    GET_USER_PROFILE = "get_user_profile", "get_user_profile"
    ANALYZE_CUSTOMER = "analyze_customer", "analyze_customer"
    GET_CONVERSATION_DATA = "get_conversation_data", "get_conversation_data"
    GET_BUSINESS_METRICS = "get_business_metrics", "get_business_metrics"


class MCPToolGroup(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="mcp_groups")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    key_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the mcp_key_… (look-up)")
    key_encrypted = models.TextField(help_text="Fernet-encrypted key, for audited viewing by admins")
    key_prefix = models.CharField(max_length=16, help_text="first characters of the key, safe to display")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "MCP 工具组"
        verbose_name_plural = "MCP 工具组"
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="mcp_group_name_unique_per_tenant")]
        indexes = [models.Index(fields=["tenant", "enabled"])]

    def __str__(self) -> str:
        return f"{self.name} (tenant {self.tenant_id})"


class MCPTool(models.Model):
    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="mcp_tools")
    tool_name = models.CharField(max_length=100, choices=ToolName.choices)
    group = models.ForeignKey(MCPToolGroup, on_delete=models.CASCADE, related_name="tools")
    version = models.CharField(max_length=20, default="1.0.0")
    description = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)
    timeout_seconds = models.PositiveIntegerField(default=30)
    config_data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "MCP 工具"
        verbose_name_plural = "MCP 工具"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "tool_name"], name="mcp_tool_unique_per_tenant"),
            models.CheckConstraint(condition=models.Q(timeout_seconds__gte=1), name="mcp_tool_timeout_positive"),
        ]
        indexes = [models.Index(fields=["group", "enabled"])]

    def __str__(self) -> str:
        return f"{self.tool_name} in {self.group_id}"

    def clean(self) -> None:
        """A tool can only live in a group of its own tenant (the admin form's guard)."""
        from django.core.exceptions import ValidationError

        if self.group_id and self.tenant_id and self.group.tenant_id != self.tenant_id:
            raise ValidationError({"group": "the group belongs to another tenant"})


class MCPCallLog(models.Model):
    """One row per tools/call, allowed or refused. Tenant and group are empty when the key was unknown."""

    tenant = models.ForeignKey(
        "tenants.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="mcp_call_logs"
    )
    tool_name = models.CharField(max_length=100)
    group = models.ForeignKey(MCPToolGroup, null=True, blank=True, on_delete=models.SET_NULL, related_name="call_logs")
    caller_app_id = models.CharField(max_length=100, blank=True)
    request = models.JSONField(default=dict, blank=True)
    response = models.JSONField(default=dict, blank=True)
    success = models.BooleanField()
    error_code = models.CharField(max_length=64, blank=True)
    error = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    subject_customer_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        verbose_name = "MCP 调用记录"
        verbose_name_plural = "MCP 调用记录"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["tool_name", "success", "created_at"], name="mcp_log_tool_success_time"),
            models.Index(fields=["group", "created_at"], name="mcp_log_group_time"),
            models.Index(fields=["caller_app_id", "created_at"], name="mcp_log_caller_time"),
            models.Index(fields=["tenant", "created_at"], name="mcp_log_tenant_time"),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} {'ok' if self.success else self.error_code} {self.duration_ms}ms"


class MCPKeyAudit(models.Model):
    """Who viewed or regenerated which group's key, and when."""

    class Action(models.TextChoices):
        CREATE = "create", "Created"
        VIEW = "view", "Viewed"
        REGENERATE = "regenerate", "Regenerated"

    tenant = models.ForeignKey("tenants.Tenant", on_delete=models.CASCADE, related_name="mcp_key_audits")
    group = models.ForeignKey(MCPToolGroup, on_delete=models.CASCADE, related_name="key_audits")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=16, choices=Action.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "MCP 密钥审计记录"
        verbose_name_plural = "MCP 密钥审计记录"
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["group", "created_at"])]

    def __str__(self) -> str:
        return f"{self.action} key of group {self.group_id} by {self.actor_id}"
