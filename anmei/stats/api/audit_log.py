"""`GET /api/v1/admin/audit-log`: the configuration trail, filtered by local days.

The view lives with statistics because its `from`/`to` are days on the tenant's clock, and the
tenant's time zone is a statistics setting (`tenant_zone`), as for the blacklist interceptions.
The trail itself is written by `anmei.audit.services.audit_record`; see docs/architecture.md
("Audit trail").
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from anmei.audit import selectors
from anmei.audit.serializers import OBJECT_TYPES, AuditEntryOutputSerializer
from anmei.common.api import validated_input
from anmei.common.errors import ApplicationError
from anmei.common.pagination import StandardPagination
from anmei.common.permissions import IsTenantAdminOrOperator, is_operator
from anmei.stats.services.rollup import local_day_bounds, tenant_zone


class AuditLogApi(APIView):
    """Tenant admins read their tenant's trail; operators read every tenant's, or one with `tenant=`."""

    pagination_class = StandardPagination
    permission_classes = [IsTenantAdminOrOperator]

    class FilterSerializer(serializers.Serializer):
        # `from` is a Python keyword: the field is added in get_fields().
        to = serializers.DateField(required=False, help_text="last local day, included (tenant time zone)")
        object_type = serializers.ChoiceField(choices=OBJECT_TYPES, required=False)
        actor = serializers.CharField(required=False, max_length=150, help_text="a user id or a username")
        tenant = serializers.IntegerField(required=False, min_value=1, help_text="operators only")
        page = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)

        def get_fields(self):
            fields = super().get_fields()
            fields["from"] = serializers.DateField(required=False, help_text="first local day (tenant time zone)")
            return fields

    @extend_schema(parameters=[FilterSerializer], responses={200: AuditEntryOutputSerializer(many=True)})
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        if is_operator(request.user):
            tenant_id = filters.get("tenant")
        else:
            tenant_id = request.user.tenant_id  # a tenant admin's `tenant=` cannot widen this
        # Across tenants an operator's days are the platform's default statistics zone.
        zone = tenant_zone(tenant_id) if tenant_id else ZoneInfo(settings.STATS_DEFAULT_TIME_ZONE)
        first, last = filters.get("from"), filters.get("to")
        if first and last and first > last:
            raise ApplicationError("invalid_range", "`from` is after `to`", details={"field": "from"})
        bounds = {
            "from": local_day_bounds(first, zone)[0] if first else None,
            "to": local_day_bounds(last, zone)[1] if last else None,
        }
        qs = selectors.audit_entry_list(tenant_id=tenant_id, filters={**filters, **bounds})
        paginator = StandardPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(AuditEntryOutputSerializer(page, many=True).data)
