"""Blacklist REST (tenant admins): list/search, add, remove, batch add/remove."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.blacklist import selectors, services
from anmei.blacklist.models import BlacklistEntry
from anmei.common.api import validated_input
from anmei.common.pagination import StandardPagination
from anmei.common.permissions import IsTenantAdmin
from anmei.common.platforms import Platform

MAX_BATCH = 5000


class EntryInputSerializer(serializers.Serializer):
    platform = serializers.ChoiceField(choices=Platform.choices)
    user_id = serializers.CharField(max_length=128)
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("must be in the future")
        return value


class EntryOutputSerializer(serializers.ModelSerializer):
    user_id = serializers.CharField(source="platform_user_id")
    created_by = serializers.IntegerField(source="created_by_id", allow_null=True)
    is_expired = serializers.SerializerMethodField()

    class Meta:
        model = BlacklistEntry
        fields = ["id", "platform", "user_id", "reason", "expires_at", "created_by", "created_at", "is_expired"]

    def get_is_expired(self, obj) -> bool:
        return obj.expires_at is not None and obj.expires_at <= timezone.now()


class BlacklistListCreateApi(APIView):
    pagination_class = StandardPagination  # documents the paginated shape (the view paginates itself)
    permission_classes = [IsTenantAdmin]

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, max_length=128)
        user_id = serializers.CharField(required=False, max_length=128)
        platform = serializers.ChoiceField(choices=Platform.choices, required=False)
        expired = serializers.BooleanField(required=False, allow_null=True, default=None)
        page = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)

    @extend_schema(parameters=[FilterSerializer], responses={200: EntryOutputSerializer(many=True)})
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        qs = selectors.blacklist_entry_list(tenant_id=request.user.tenant_id, filters=filters)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        response = paginator.get_paginated_response(EntryOutputSerializer(page, many=True).data)
        response.data["version"] = selectors.blacklist_version(tenant_id=request.user.tenant_id)
        return response

    @extend_schema(request=EntryInputSerializer, responses={201: EntryOutputSerializer})
    def post(self, request):
        data = validated_input(EntryInputSerializer, request.data)
        entry, version = services.blacklist_entry_add(
            tenant_id=request.user.tenant_id,
            actor=request.user,
            platform=data["platform"],
            user_id=data["user_id"],
            reason=data.get("reason") or "",
            expires_at=data.get("expires_at"),
        )
        return Response({**EntryOutputSerializer(entry).data, "version": version}, status=status.HTTP_201_CREATED)


class BlacklistDeleteApi(APIView):
    permission_classes = [IsTenantAdmin]

    @extend_schema(responses={204: None})
    def delete(self, request, entry_id: int):
        services.blacklist_entry_remove(tenant_id=request.user.tenant_id, entry_id=entry_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class BlacklistBatchApi(APIView):
    """One change for the whole batch: one version bump, one push per bot."""

    permission_classes = [IsTenantAdmin]

    class InputSerializer(serializers.Serializer):
        action = serializers.ChoiceField(choices=["add", "remove"])
        entries = EntryInputSerializer(many=True, allow_empty=False, max_length=MAX_BATCH)

        def validate_entries(self, value):
            keys = [(e["platform"], e["user_id"]) for e in value]
            if len(set(keys)) != len(keys):
                raise serializers.ValidationError("duplicate (platform, user_id) in the batch")
            return value

    @extend_schema(request=InputSerializer, responses={200: dict})
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        tenant_id = request.user.tenant_id
        if data["action"] == "add":
            result = services.blacklist_batch_add(tenant_id=tenant_id, actor=request.user, entries=data["entries"])
        else:
            result = services.blacklist_batch_remove(tenant_id=tenant_id, entries=data["entries"])
        return Response({"action": data["action"], **result})
