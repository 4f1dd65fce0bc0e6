from django.apps import AppConfig


class McpAdminConfig(AppConfig):
    verbose_name = "MCP 工具"
    name = "anmei.mcp_admin"
    label = "mcp_admin"
