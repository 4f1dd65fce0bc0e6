from django.urls import path

from anmei.mcp_admin import api

urlpatterns = [
    path("groups", api.GroupListCreateApi.as_view(), name="mcp-groups"),
    path("groups/<id:group_id>", api.GroupDetailApi.as_view(), name="mcp-group"),
    path("groups/<id:group_id>/api-key", api.GroupKeyApi.as_view(), name="mcp-group-key"),
    path("groups/<id:group_id>/regenerate-key", api.GroupKeyRegenerateApi.as_view(), name="mcp-group-regenerate"),
    path("tools", api.ToolListApi.as_view(), name="mcp-tools"),
    path("tools/<id:tool_id>", api.ToolUpdateApi.as_view(), name="mcp-tool"),
    path("metrics", api.MetricsApi.as_view(), name="mcp-metrics"),
]
