from django.apps import AppConfig


class McpAdminConfig(AppConfig):
    name = "anmei.mcp_admin"
    label = "mcp_admin"
