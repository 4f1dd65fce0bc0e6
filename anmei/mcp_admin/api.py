"""Admin API under /api/v1/mcp-config/ (API.md): groups, keys (audited), tools, call metrics.

Tenant admins manage their own tenant's groups and tools; platform operators any tenant's (and
must name the tenant when creating a group). Another tenant's ids answer 404.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.accounts.models import User
from anmei.common.api import IdField, validated_input
from anmei.common.errors import ApplicationError
from anmei.common.permissions import IsTenantAdminOrOperator, is_operator
from anmei.mcp_admin import services
from anmei.mcp_admin.models import MCPTool, MCPToolGroup
from anmei.mcp_admin.selectors import config as selectors
from anmei.mcp_admin.selectors.metrics import call_metrics
from anmei.tenants.models import Tenant


class ToolOutputSerializer(serializers.ModelSerializer):
    group_id = serializers.IntegerField()
    tenant_id = serializers.IntegerField()

    class Meta:
        model = MCPTool
        fields = [
            "id",
            "tenant_id",
            "tool_name",
            "group_id",
            "version",
            "description",
            "enabled",
            "timeout_seconds",
            "config_data",
            "created_at",
            "updated_at",
        ]


class GroupOutputSerializer(serializers.ModelSerializer):
    tenant_id = serializers.IntegerField()
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True)
    tools = serializers.SerializerMethodField()

    class Meta:
        model = MCPToolGroup
        fields = [
            "id",
            "tenant_id",
            "name",
            "description",
            "enabled",
            "key_prefix",
            "created_by",
            "tools",
            "created_at",
            "updated_at",
        ]

    def get_tools(self, group: MCPToolGroup) -> list[str]:
        return sorted(t.tool_name for t in group.tools.all())


class GroupCreatedOutputSerializer(GroupOutputSerializer):
    api_key = serializers.CharField()

    class Meta(GroupOutputSerializer.Meta):
        fields = [*GroupOutputSerializer.Meta.fields, "api_key"]


class KeyOutputSerializer(serializers.Serializer):
    group_id = serializers.IntegerField()
    api_key = serializers.CharField()


def _tenant_for_create(actor: User, tenant_id: int | None) -> Tenant:
    if is_operator(actor):
        if tenant_id is None:
            raise ApplicationError(
                "validation_error",
                "tenant: operators must name the tenant",
                details={"fields": {"tenant": ["required"]}},
            )
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            raise ApplicationError("tenant_not_found", "no such tenant", status_code=400, details={"field": "tenant"})
        return tenant
    return actor.tenant


class GroupListCreateApi(APIView):
    permission_classes = [IsTenantAdminOrOperator]

    class FilterSerializer(serializers.Serializer):
        tenant = serializers.IntegerField(required=False, min_value=1, help_text="operators: one tenant only")

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        tool_names = serializers.ListField(
            child=serializers.ChoiceField(choices=services.TOOL_NAMES), required=False, allow_empty=True
        )
        tenant = serializers.IntegerField(required=False, min_value=1, help_text="required for operators")

    @extend_schema(parameters=[FilterSerializer], responses={200: GroupOutputSerializer(many=True)})
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        groups = selectors.group_list(actor=request.user, tenant_id=filters.get("tenant"))
        return Response(GroupOutputSerializer(groups, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: GroupCreatedOutputSerializer})
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        tenant = _tenant_for_create(request.user, data.get("tenant"))
        group, key = services.mcp_group_create(
            tenant=tenant,
            name=data["name"],
            description=data["description"],
            created_by=request.user,
            tool_names=data.get("tool_names"),
        )
        group = selectors.group_get(actor=request.user, group_id=group.pk)
        group.api_key = key
        return Response(GroupCreatedOutputSerializer(group).data, status=status.HTTP_201_CREATED)


class GroupDetailApi(APIView):
    permission_classes = [IsTenantAdminOrOperator]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100, required=False)
        description = serializers.CharField(required=False, allow_blank=True)
        enabled = serializers.BooleanField(required=False)

    @extend_schema(responses={200: GroupOutputSerializer})
    def get(self, request, group_id: int):
        return Response(GroupOutputSerializer(selectors.group_get(actor=request.user, group_id=group_id)).data)

    @extend_schema(request=InputSerializer, responses={200: GroupOutputSerializer})
    def patch(self, request, group_id: int):
        group = selectors.group_get(actor=request.user, group_id=group_id)
        data = validated_input(self.InputSerializer, request.data)
        group = services.mcp_group_update(group=group, data=data)
        return Response(GroupOutputSerializer(selectors.group_get(actor=request.user, group_id=group.pk)).data)


class GroupKeyApi(APIView):
    """View a group's key; every view is written to the key audit."""

    permission_classes = [IsTenantAdminOrOperator]

    @extend_schema(responses={200: KeyOutputSerializer})
    def get(self, request, group_id: int):
        group = selectors.group_get(actor=request.user, group_id=group_id)
        key = services.mcp_group_key_view(group=group, actor=request.user)
        return Response({"group_id": group.pk, "api_key": key})


class GroupKeyRegenerateApi(APIView):
    permission_classes = [IsTenantAdminOrOperator]

    @extend_schema(request=None, responses={200: KeyOutputSerializer})
    def post(self, request, group_id: int):
        group = selectors.group_get(actor=request.user, group_id=group_id)
        key = services.mcp_group_key_regenerate(group=group, actor=request.user)
        return Response({"group_id": group.pk, "api_key": key})


class ToolListApi(APIView):
    permission_classes = [IsTenantAdminOrOperator]

    class FilterSerializer(serializers.Serializer):
        group_id = IdField(required=False)
        tenant = serializers.IntegerField(required=False, min_value=1, help_text="operators: one tenant only")

    @extend_schema(parameters=[FilterSerializer], responses={200: ToolOutputSerializer(many=True)})
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        tools = selectors.tool_list(
            actor=request.user, group_id=filters.get("group_id"), tenant_id=filters.get("tenant")
        )
        return Response(ToolOutputSerializer(tools, many=True).data)


class ToolUpdateApi(APIView):
    """Update a tool (API.md, "MCP"); fields left out keep their value. Effective on the next call."""

    permission_classes = [IsTenantAdminOrOperator]

    class InputSerializer(serializers.Serializer):
        group_id = IdField(required=False)
        enabled = serializers.BooleanField(required=False)
        timeout_seconds = serializers.IntegerField(required=False, min_value=1, max_value=600)
        description = serializers.CharField(required=False, allow_blank=True)
        config_data = serializers.DictField(required=False)
        version = serializers.CharField(required=False, max_length=20)

    @extend_schema(request=InputSerializer, responses={200: ToolOutputSerializer})
    def put(self, request, tool_id: int):
        tool = selectors.tool_get(actor=request.user, tool_id=tool_id)
        data = validated_input(self.InputSerializer, request.data)
        tool = services.mcp_tool_update(tool=tool, data=data)
        return Response(ToolOutputSerializer(tool).data)

    patch = put


class MetricsApi(APIView):
    permission_classes = [IsTenantAdminOrOperator]

    class FilterSerializer(serializers.Serializer):
        hours = serializers.IntegerField(required=False, min_value=1, max_value=24 * 31, default=24)
        tenant = serializers.IntegerField(required=False, min_value=1, help_text="operators: one tenant only")

    @extend_schema(parameters=[FilterSerializer], responses={200: dict})
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        return Response(call_metrics(actor=request.user, hours=filters["hours"], tenant_id=filters.get("tenant")))
