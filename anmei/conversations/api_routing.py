"""`GET|PUT /api/v1/admin/routing` (API.md "Routing and service levels")."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.common.api import validated_input
from anmei.common.permissions import IsTenantAdmin
from anmei.conversations.business_hours import business_hours_error
from anmei.conversations.models import RoutingSettings
from anmei.conversations.selectors import routing_settings_get
from anmei.conversations.services.routing import routing_settings_update


class RoutingSettingsApi(APIView):
    """The tenant admin reads and replaces the routing mode, capacity and business hours."""

    permission_classes = [IsTenantAdmin]

    class InputSerializer(serializers.Serializer):
        mode = serializers.ChoiceField(choices=RoutingSettings.Mode.choices)
        capacity_per_consultant = serializers.IntegerField(min_value=1, max_value=100)
        business_hours = serializers.JSONField(required=False, allow_null=True, default=None)
        off_hours_message = serializers.CharField(max_length=2000, allow_blank=True, required=False, default="")

        def validate_business_hours(self, value):
            error = business_hours_error(value)
            if error:
                raise serializers.ValidationError(error)
            if not value:
                return {}
            return {**value, "holidays": sorted(set(value.get("holidays", [])))}

    @staticmethod
    def _out(settings: RoutingSettings) -> dict:
        return {
            "mode": settings.mode,
            "capacity_per_consultant": settings.capacity_per_consultant,
            "business_hours": settings.business_hours or None,
            "off_hours_message": settings.off_hours_message,
        }

    @extend_schema(responses={200: InputSerializer})
    def get(self, request):
        return Response(self._out(routing_settings_get(tenant_id=request.user.tenant_id)))

    @extend_schema(request=InputSerializer, responses={200: InputSerializer})
    def put(self, request):
        data = validated_input(self.InputSerializer, request.data)
        settings = routing_settings_update(tenant_id=request.user.tenant_id, data=data)
        return Response(self._out(settings))
