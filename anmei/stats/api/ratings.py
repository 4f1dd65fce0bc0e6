"""CSAT ratings of a conversation (API.md "Statistics")."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.common.api import validated_input
from anmei.common.permissions import IsTenantMember
from anmei.stats import selectors
from anmei.stats.services.ratings import rating_create


class ConversationRatingApi(APIView):
    """CSAT: the conversation's customer, once, after it ended."""

    permission_classes = [IsTenantMember]

    class InputSerializer(serializers.Serializer):
        score = serializers.IntegerField(min_value=1, max_value=5)
        comment = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")

    class OutputSerializer(serializers.Serializer):
        conversation_id = serializers.IntegerField()
        rated = serializers.BooleanField()
        score = serializers.IntegerField(allow_null=True)
        comment = serializers.CharField(allow_null=True)
        created_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        responses={200: OutputSerializer},
        description="Whether the conversation was rated (its customer's page hides the form once it was).",
    )
    def get(self, request, conversation_id: int):
        return Response(selectors.rating_get(user=request.user, conversation_id=conversation_id))

    @extend_schema(request=InputSerializer, responses={201: OpenApiTypes.OBJECT})
    def post(self, request, conversation_id: int):
        data = validated_input(self.InputSerializer, request.data)
        rating = rating_create(
            user=request.user, conversation_id=conversation_id, score=data["score"], comment=data["comment"]
        )
        body = {
            "conversation_id": rating.conversation_id,
            "score": rating.score,
            "comment": rating.comment,
            "created_at": rating.created_at.isoformat(),
        }
        return Response(body, status=status.HTTP_201_CREATED)
