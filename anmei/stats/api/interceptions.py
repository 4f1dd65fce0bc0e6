"""Blocked messages of a tenant over local days (`GET /api/v1/blacklist/interceptions`)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from anmei.blacklist.selectors import interception_report_list
from anmei.common.api import validated_input
from anmei.common.pagination import StandardPagination
from anmei.common.permissions import IsTenantAdmin
from anmei.stats.services.rollup import local_day_bounds, tenant_zone


class LocalDateRangeSerializer(serializers.Serializer):
    """Optional `from`/`to`: local days in the tenant's time zone, both included."""

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateField(required=False)  # `from` is a Python keyword
        fields["to"] = serializers.DateField(required=False)
        return fields

    def validate(self, attrs):
        if attrs.get("from") and attrs.get("to") and attrs["from"] > attrs["to"]:
            raise serializers.ValidationError({"from": ["from must not be after to"]})
        return attrs


def local_range_bounds(*, tenant_id: int, day_from, day_to) -> tuple:
    """UTC [start, end) of the local days `day_from`..`day_to` (either may be None: open)."""
    zone = tenant_zone(tenant_id)
    start = local_day_bounds(day_from, zone)[0] if day_from else None
    end = local_day_bounds(day_to, zone)[1] if day_to else None
    return start, end


class InterceptionOutputSerializer(serializers.Serializer):
    platform = serializers.CharField()
    user_id = serializers.CharField(source="platform_user_id")
    at = serializers.DateTimeField(source="created_at")
    source = serializers.SerializerMethodField()

    def get_source(self, obj) -> str:
        """`platform`: the platform's own check caught a forwarded message; `bot_report`: the bot blocked it."""
        return "platform" if obj.source == "platform" else "bot_report"


class BlacklistInterceptionListApi(APIView):
    """Blocked messages of the tenant (`GET /api/v1/blacklist/interceptions`), newest first."""

    pagination_class = StandardPagination
    permission_classes = [IsTenantAdmin]

    class FilterSerializer(LocalDateRangeSerializer):
        page = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)

    @extend_schema(
        tags=["blacklist"],
        summary="List blocked messages",
        description="Every message from a blacklisted sender, whether the platform or the bot blocked it; "
        "`from`/`to` are local days in the tenant's time zone.",
        parameters=[
            OpenApiParameter("from", OpenApiTypes.DATE, description="first local day (tenant time zone)"),
            OpenApiParameter("to", OpenApiTypes.DATE, description="last local day, included (tenant time zone)"),
            OpenApiParameter("page", OpenApiTypes.INT),
            OpenApiParameter("page_size", OpenApiTypes.INT),
        ],
        responses={200: InterceptionOutputSerializer(many=True)},
    )
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        tenant_id = request.user.tenant_id
        start, end = local_range_bounds(tenant_id=tenant_id, day_from=filters.get("from"), day_to=filters.get("to"))
        qs = interception_report_list(tenant_id=tenant_id, start=start, end=end)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(InterceptionOutputSerializer(page, many=True).data)
