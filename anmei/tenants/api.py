from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.common.api import validated_input
from anmei.common.errors import NotFoundError
from anmei.common.permissions import IsOperator
from anmei.tenants import services
from anmei.tenants.models import Tenant
from anmei.tenants.selectors import tenant_get_active


class TenantOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    status = serializers.CharField()


class TenantApproveApi(APIView):
    permission_classes = [IsOperator]

    @extend_schema(request=None, responses={200: TenantOutputSerializer})
    def post(self, request, tenant_id: int):
        tenant = Tenant.objects.filter(pk=tenant_id).first()
        if tenant is None:
            raise NotFoundError("tenant")
        tenant = services.tenant_approve(tenant=tenant)
        return Response(TenantOutputSerializer(tenant).data)


class TenantPublicApi(APIView):
    """`GET /api/v1/tenants/public?slug=` — what a customer page shows about a clinic: its name."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    class FilterSerializer(serializers.Serializer):
        slug = serializers.SlugField(max_length=50)

    class OutputSerializer(serializers.Serializer):
        slug = serializers.CharField()
        name = serializers.CharField()

    @extend_schema(parameters=[FilterSerializer], responses={200: OutputSerializer}, auth=[])
    def get(self, request):
        data = validated_input(self.FilterSerializer, request.query_params.dict())
        tenant = tenant_get_active(data["slug"])
        return Response({"slug": tenant.slug, "name": tenant.name})
