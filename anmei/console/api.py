"""The pages' own reads: a conversation's history paged upward, its timeline, the customer panel."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.common.api import IdField, validated_input
from anmei.common.permissions import IsConsultantOrAdmin, IsTenantMember
from anmei.console import selectors
from anmei.console.consumers import conversation_event_data
from anmei.conversations.api import MessageOutputSerializer


class ConversationHistoryApi(APIView):
    """`GET /api/v1/console/conversations/<id>/history?before=<message id>&limit=` — newest page first."""

    permission_classes = [IsTenantMember]

    class FilterSerializer(serializers.Serializer):
        before = IdField(required=False)
        limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=30)

    class OutputSerializer(serializers.Serializer):
        results = MessageOutputSerializer(many=True)
        has_more = serializers.BooleanField()

    @extend_schema(parameters=[FilterSerializer], responses={200: OutputSerializer})
    def get(self, request, conversation_id: int):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        rows, has_more = selectors.message_history(
            user=request.user, conversation_id=conversation_id, before_id=filters.get("before"), limit=filters["limit"]
        )
        return Response({"results": MessageOutputSerializer(rows, many=True).data, "has_more": has_more})


class ConversationTimelineApi(APIView):
    """`GET /api/v1/console/conversations/<id>/events` — claimed, transferred, ended … oldest first."""

    permission_classes = [IsTenantMember]

    class EventSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        conversation_id = serializers.IntegerField()
        action = serializers.CharField()
        from_status = serializers.CharField()
        status = serializers.CharField()
        actor_id = serializers.IntegerField(allow_null=True)
        details = serializers.JSONField()
        created_at = serializers.DateTimeField()

    @extend_schema(responses={200: inline_serializer("ConversationTimeline", {"results": EventSerializer(many=True)})})
    def get(self, request, conversation_id: int):
        events = selectors.conversation_event_list(user=request.user, conversation_id=conversation_id)
        staff = request.user.role != "customer"
        return Response({"results": [conversation_event_data(e, staff=staff) for e in events]})


class CustomerPanelApi(APIView):
    """`GET /api/v1/console/customers/<id>` — the side panel (consultants and admins of the tenant)."""

    permission_classes = [IsConsultantOrAdmin]

    class OutputSerializer(serializers.Serializer):
        class ConversationSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            status = serializers.CharField()
            channel = serializers.CharField()
            created_at = serializers.DateTimeField()
            ended_at = serializers.DateTimeField(allow_null=True)

        class BlacklistSerializer(serializers.Serializer):
            id = serializers.IntegerField()
            reason = serializers.CharField()
            expires_at = serializers.DateTimeField(allow_null=True)

        id = serializers.IntegerField()
        username = serializers.CharField()
        nickname = serializers.CharField()
        source = serializers.CharField()
        platform_user_id = serializers.CharField()
        created_at = serializers.DateTimeField()

        class BotSerializer(serializers.Serializer):
            name = serializers.CharField()
            is_stale = serializers.BooleanField()
            last_heartbeat_at = serializers.DateTimeField(allow_null=True)

        blacklisted = BlacklistSerializer(allow_null=True)
        bot = BotSerializer(allow_null=True)
        conversations = ConversationSerializer(many=True)

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request, customer_id: int):
        profile = selectors.customer_profile_get(user=request.user, customer_id=customer_id)
        return Response(self.OutputSerializer(profile).data)


class ConversationPreviewApi(APIView):
    """`GET /api/v1/console/previews?ids=1,2,3` — the last message of each listed conversation."""

    permission_classes = [IsTenantMember]

    class FilterSerializer(serializers.Serializer):
        ids = serializers.RegexField(r"^[0-9]{1,18}(,[0-9]{1,18}){0,99}$")

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: inline_serializer("ConversationPreviews", {"results": MessageOutputSerializer(many=True)})},
    )
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        ids = [int(i) for i in filters["ids"].split(",")]
        latest = selectors.last_messages(user=request.user, conversation_ids=ids)
        return Response({"results": MessageOutputSerializer(list(latest.values()), many=True).data})
