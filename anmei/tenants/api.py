from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.common.errors import NotFoundError
from anmei.common.permissions import IsOperator
from anmei.tenants import services
from anmei.tenants.models import Tenant


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
