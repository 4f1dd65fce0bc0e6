from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.apikeys import services
from anmei.apikeys.models import ApiKey
from anmei.common.api import validated_input
from anmei.common.permissions import IsTenantAdmin


class ApiKeyOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = ApiKey
        fields = ["id", "name", "prefix", "scopes", "created_at", "last_used_at", "usage_count", "revoked_at"]


class ApiKeyCreatedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    prefix = serializers.CharField()
    key = serializers.CharField()
    scopes = serializers.ListField(child=serializers.CharField())


class ApiKeyListCreateApi(APIView):
    permission_classes = [IsTenantAdmin]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        scopes = serializers.ListField(
            child=serializers.ChoiceField(choices=ApiKey.Scope.choices), min_length=1, max_length=len(ApiKey.Scope)
        )

    @extend_schema(responses={200: ApiKeyOutputSerializer(many=True)})
    def get(self, request):
        keys = ApiKey.objects.filter(tenant_id=request.user.tenant_id).order_by("-id")
        return Response(ApiKeyOutputSerializer(keys, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: ApiKeyCreatedSerializer})
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        api_key, key = services.api_key_create(actor=request.user, name=data["name"], scopes=data["scopes"])
        body = {"id": api_key.id, "name": api_key.name, "prefix": api_key.prefix, "key": key, "scopes": api_key.scopes}
        return Response(body, status=status.HTTP_201_CREATED)


class ApiKeyRevokeApi(APIView):
    permission_classes = [IsTenantAdmin]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request, api_key_id: int):
        services.api_key_revoke(actor=request.user, api_key_id=api_key_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
