from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.accounts.authentication import BearerTokenAuthentication
from anmei.apikeys.authentication import ApiKeyAuthentication
from anmei.automation import selectors, services
from anmei.automation.models import AutomationRun
from anmei.common.api import IdField, validated_input
from anmei.common.errors import ApplicationError, NotFoundError
from anmei.common.permissions import IsTenantAdmin, IsTenantAdminOrOperator, is_operator
from anmei.tenants.models import Tenant


def _tenant_id_for(request, requested: int | None) -> int:
    """Tenant admins see their own tenant; operators name one with ?tenant=<id>."""
    user = request.user
    if is_operator(user):
        if not requested:
            raise ApplicationError("tenant_required", "operators must pass ?tenant=<id>", details={"field": "tenant"})
        if not Tenant.objects.filter(pk=requested).exists():
            raise NotFoundError("tenant")
        return requested
    return user.tenant_id


class DashboardApi(APIView):
    """Registration automation dashboard (API.md: the top-level keys are fixed)."""

    # Session auth too, so the admin page can fetch it with the Django admin login.
    authentication_classes = [BearerTokenAuthentication, ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [IsTenantAdminOrOperator]

    class FilterSerializer(serializers.Serializer):
        days = serializers.IntegerField(required=False, min_value=1, max_value=90, default=14)
        tenant = IdField(required=False)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: inline_serializer(
                "RegistrationAutomationDashboard",
                {
                    "automation_metrics": serializers.DictField(),
                    "mcp_server_status": serializers.DictField(),
                    "dify_agent_status": serializers.DictField(),
                    "recent_errors": serializers.ListField(child=serializers.DictField()),
                    "system_health": serializers.DictField(),
                },
            )
        },
    )
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        tenant_id = _tenant_id_for(request, filters.get("tenant"))
        return Response(selectors.automation_dashboard(tenant_id=tenant_id, days=filters["days"]))


class RunRetryApi(APIView):
    """Start a failed or stuck run again (same as the Django admin action)."""

    permission_classes = [IsTenantAdmin]

    @extend_schema(
        request=None,
        responses={
            202: inline_serializer(
                "AutomationRunRetried",
                {
                    "id": serializers.IntegerField(),
                    "status": serializers.CharField(),
                    "generation": serializers.IntegerField(),
                },
            ),
            404: OpenApiResponse(description="no such run in your tenant"),
            409: OpenApiResponse(description="neither failed nor stuck"),
        },
    )
    def post(self, request, run_id: int):
        run = AutomationRun.objects.filter(pk=run_id, tenant_id=request.user.tenant_id).first()
        if run is None:
            raise NotFoundError("automation run")
        run = services.automation_run_retry(run=run)
        return Response({"id": run.id, "status": run.status, "generation": run.generation}, status=202)
