from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.common.api import IdField, validated_input
from anmei.common.pagination import StandardPagination
from anmei.common.permissions import IsConsultantOrAdmin, IsTenantMember
from anmei.conversations import selectors, services
from anmei.conversations.models import Conversation, Message
from anmei.media.links import media_url_for_payload


class ConversationOutputSerializer(serializers.ModelSerializer):
    customer = serializers.IntegerField(source="customer_id")
    customer_nickname = serializers.CharField(source="customer.display_name")
    consultant = serializers.IntegerField(source="consultant_id", allow_null=True)
    transfer_to = serializers.IntegerField(source="transfer_to_id", allow_null=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "customer",
            "customer_nickname",
            "consultant",
            "transfer_to",
            "bot_name",
            "channel",
            "status",
            "created_at",
            "updated_at",
            "last_message_at",
            "ended_at",
        ]


class MessageInputSerializer(serializers.Serializer):
    """A new message: JSON `{type: text, content}`, or multipart `{type: image|file|voice, file, content?}`.

    The console WebSocket's `message.send` maps onto the same fields (text only).
    """

    type = serializers.ChoiceField(choices=[t for t in Message.Type.values if t != Message.Type.SYSTEM])
    content = serializers.CharField(max_length=10000, required=False, default="")  # blank is an error, absent is not
    file = serializers.FileField(
        required=False, allow_empty_file=False, help_text="image, file or voice (multipart); content is its caption"
    )

    def validate(self, attrs):
        if attrs["type"] == Message.Type.TEXT:
            if not attrs["content"]:
                raise serializers.ValidationError({"content": ["This field is required."]})
            if attrs.get("file"):
                raise serializers.ValidationError({"file": ["a text message carries no file"]})
        elif not attrs.get("file"):
            raise serializers.ValidationError({"file": [f"a {attrs['type']} message needs a file"]})
        return attrs


class TransferInputSerializer(serializers.Serializer):
    to_consultant = IdField()
    note = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        help_text="optional hand-off note for the colleague (staff only: never shown to the customer)",
    )


class DeliverySerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["pending", "sent", "failed"])
    attempts = serializers.IntegerField()


class MessageOutputSerializer(serializers.ModelSerializer):
    conversation_id = serializers.IntegerField()
    sender_id = serializers.IntegerField(allow_null=True)
    media_url = serializers.SerializerMethodField(help_text="signed playback link, fresh on every read")
    delivery = DeliverySerializer(
        read_only=True, allow_null=True, help_text="messages to IM customers: their delivery through the bot"
    )

    class Meta:
        model = Message
        fields = [
            "id",
            "conversation_id",
            "sender_type",
            "sender_id",
            "type",
            "content",
            "payload",
            "media_url",
            "delivery",
            "created_at",
        ]

    def get_media_url(self, message: Message) -> str | None:
        return media_url_for_payload(message.tenant_id, message.payload)


class ConversationListApi(APIView):
    pagination_class = StandardPagination  # documents the paginated shape (the view paginates itself)
    permission_classes = [IsTenantMember]

    class FilterSerializer(serializers.Serializer):
        customer = IdField(required=False)
        consultant = IdField(required=False)
        status = serializers.ChoiceField(choices=Conversation.Status.choices, required=False)
        channel = serializers.CharField(required=False, max_length=32)
        created_after = serializers.DateTimeField(required=False)
        created_before = serializers.DateTimeField(required=False)
        page = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)

    @extend_schema(parameters=[FilterSerializer], responses={200: ConversationOutputSerializer(many=True)})
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        qs = selectors.conversation_list(user=request.user, filters=filters)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(ConversationOutputSerializer(page, many=True).data)

    class StartInputSerializer(serializers.Serializer):
        """Empty: the customer is the caller."""

    @extend_schema(
        request=StartInputSerializer,
        responses={201: ConversationOutputSerializer, 200: ConversationOutputSerializer},
        description="A customer starts a new consultation: 201 a new waiting conversation, or 200 with their "
        "open one. A returning customer whose last conversation ended starts here.",
    )
    def post(self, request):
        validated_input(self.StartInputSerializer, request.data)
        conversation, created = services.conversation_start_by_customer(customer=request.user)
        return Response(
            ConversationOutputSerializer(conversation).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ConversationMessageListApi(APIView):
    pagination_class = StandardPagination  # documents the paginated shape (the view paginates itself)
    permission_classes = [IsTenantMember]

    class FilterSerializer(serializers.Serializer):
        page = serializers.IntegerField(required=False, min_value=1, max_value=100_000)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100)

    @extend_schema(parameters=[FilterSerializer], responses={200: MessageOutputSerializer(many=True)})
    def get(self, request, conversation_id: int):
        validated_input(self.FilterSerializer, request.query_params.dict())
        conversation = selectors.conversation_get(user=request.user, conversation_id=conversation_id)
        paginator = StandardPagination()
        page = paginator.paginate_queryset(selectors.message_list(conversation=conversation), request, view=self)
        return paginator.get_paginated_response(MessageOutputSerializer(page, many=True).data)

    InputSerializer = MessageInputSerializer
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        request={"application/json": InputSerializer, "multipart/form-data": InputSerializer},
        responses={201: MessageOutputSerializer},
    )
    def post(self, request, conversation_id: int):
        """A consultant's reply (IM customers get it through their bot) or a customer's message.

        Photos, files and voice come as multipart with a `file` (same limits and type sniffing as bot
        uploads: 413 `media_too_large`, 415 `media_type_not_allowed`); the answer carries `media_url`.
        """
        data = validated_input(self.InputSerializer, request.data)
        message = services.conversation_message_send(
            user=request.user,
            conversation_id=conversation_id,
            type=data["type"],
            content=data["content"],
            upload=data.get("file"),
        )
        return Response(MessageOutputSerializer(message).data, status=status.HTTP_201_CREATED)


class _TransitionApi(APIView):
    permission_classes = [IsConsultantOrAdmin]
    transition = None

    @extend_schema(request=None, responses={200: ConversationOutputSerializer})
    def post(self, request, conversation_id: int):
        conversation = type(self).transition(user=request.user, conversation_id=conversation_id)
        return Response(ConversationOutputSerializer(conversation).data)


class ConversationClaimApi(_TransitionApi):
    """waiting → active; among concurrent claims exactly one wins, the others get 409."""

    transition = staticmethod(services.conversation_claim)


class ConversationAcceptApi(_TransitionApi):
    """transferring → active, by the consultant the conversation was transferred to."""

    transition = staticmethod(services.conversation_accept)


class ConversationDeclineApi(_TransitionApi):
    """transferring → active, staying with the current consultant."""

    transition = staticmethod(services.conversation_decline)


class ConversationEndApi(_TransitionApi):
    """→ ended (its consultant or an admin; any consultant for a waiting conversation)."""

    transition = staticmethod(services.conversation_end)


class ConversationTransferApi(APIView):
    """active → transferring to another consultant of the tenant."""

    permission_classes = [IsConsultantOrAdmin]

    InputSerializer = TransferInputSerializer

    @extend_schema(request=InputSerializer, responses={200: ConversationOutputSerializer})
    def post(self, request, conversation_id: int):
        data = validated_input(self.InputSerializer, request.data)
        conversation = services.conversation_transfer(
            user=request.user,
            conversation_id=conversation_id,
            to_consultant_id=data["to_consultant"],
            note=data.get("note", ""),
        )
        return Response(ConversationOutputSerializer(conversation).data)


class MessageSearchResultSerializer(MessageOutputSerializer):
    customer_id = serializers.IntegerField(source="conversation.customer_id")
    customer_nickname = serializers.CharField(source="conversation.customer.display_name")
    consultant_id = serializers.IntegerField(source="conversation.consultant_id", allow_null=True)

    class Meta(MessageOutputSerializer.Meta):
        fields = [
            *MessageOutputSerializer.Meta.fields,
            "customer_id",
            "customer_nickname",
            "consultant_id",
            "is_blocked",
        ]


class MessageSearchApi(APIView):
    """Search the tenant's messages (seed 002 §3.2.3) with keyset (cursor) pagination, newest first."""

    permission_classes = [IsConsultantOrAdmin]

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, max_length=200)
        customer = IdField(required=False)
        customer_nickname = serializers.CharField(required=False, max_length=64)
        consultant = IdField(required=False)
        conversation = IdField(required=False)
        type = serializers.ChoiceField(choices=Message.Type.choices, required=False)
        sender_type = serializers.ChoiceField(choices=Message.SenderType.choices, required=False)
        after = serializers.DateTimeField(required=False)
        before = serializers.DateTimeField(required=False)
        include_blocked = serializers.BooleanField(required=False, default=False)
        cursor = serializers.CharField(required=False, max_length=200)
        page_size = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)

        def validate(self, attrs):
            if attrs.get("after") and attrs.get("before") and attrs["after"] >= attrs["before"]:
                raise serializers.ValidationError({"before": ["must be later than after"]})
            return attrs

    class OutputSerializer(serializers.Serializer):
        results = MessageSearchResultSerializer(many=True)
        next_cursor = serializers.CharField(allow_null=True)

    @extend_schema(parameters=[FilterSerializer], responses={200: OutputSerializer})
    def get(self, request):
        filters = validated_input(self.FilterSerializer, request.query_params.dict())
        qs = selectors.message_search(user=request.user, filters=filters)
        rows, next_cursor = selectors.message_search_page(
            qs, cursor=filters.get("cursor"), page_size=filters["page_size"]
        )
        return Response({"results": MessageSearchResultSerializer(rows, many=True).data, "next_cursor": next_cursor})
