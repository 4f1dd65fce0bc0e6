from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from anmei.audit import selectors
from anmei.audit.models import AuditEntry
from anmei.common.api import validated_input
from anmei.common.pagination import StandardPagination
from anmei.common.permissions import IsTenantAdminOrOperator, is_operator

OBJECT_TYPES = [
    "automation_settings",
    "agent_config",
    "agent_variant",
    "bot_config",
    "bot_gateway",
    "mcp_group",
    "mcp_tool",
    "routing",
    "sla_policy",
    "retention",
    "privacy_notice",
    "api_key",
    "blacklist_entry",
    "user",
]


class AuditEntryOutputSerializer(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = ["id", "at", "actor", "action", "object_type", "object_id", "changes"]

    def get_actor(self, obj) -> dict | None:
        if obj.actor_id is None and not obj.actor_username:
            return None
        return {"id": obj.actor_id, "username": obj.actor_username}


class AuditLogApi(APIView):
    """Tenant admins read their tenant's trail; operators read every tenant's, or one with `tenant=`."""

    pagination_class = StandardPagination
    permission_classes = [IsTenantAdminOrOperator]

    class FilterSerializer(serializers.Serializer):
        from_ = serializers.DateTimeField(required=False)
        to = serializers.DateTimeField(required=False)
        object_type = serializers.ChoiceField(choices=OBJECT_TYPES, required=False)
        actor = serializers.CharField(required=False, max_length=150)
        tenant = serializers.IntegerField(required=False, min_value=1)
        page = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)

        def to_internal_value(self, data):
            data = dict(data)
            if "from" in data:
                data["from_"] = data.pop("from")
            return super().to_internal_value(data)

    @extend_schema(parameters=[FilterSerializer], responses={200: AuditEntryOutputSerializer(many=True)})
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        filters["from"] = filters.pop("from_", None)
        if is_operator(request.user):
            tenant_id = filters.get("tenant")
        else:
            tenant_id = request.user.tenant_id  # a tenant admin's `tenant=` cannot widen this
        qs = selectors.audit_entry_list(tenant_id=tenant_id, filters=filters)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(AuditEntryOutputSerializer(page, many=True).data)
