"""Bot REST doors: admin bot management (`/bots`) and the bot-facing webhooks (`/bot/...`)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.blacklist.selectors import blacklist_snapshot
from anmei.bots import selectors, services
from anmei.bots.authentication import BotTokenAuthentication, IsBot
from anmei.bots.models import BotInstance
from anmei.common.api import TenantURLField, validated_input
from anmei.common.permissions import IsConsultantOrAdmin, IsTenantAdmin
from anmei.common.platforms import Platform
from anmei.conversations.api import DeliverySerializer
from anmei.conversations.models import Message


class BotOutputSerializer(serializers.ModelSerializer):
    is_stale = serializers.BooleanField()

    class Meta:
        model = BotInstance
        fields = [
            "id",
            "name",
            "platform",
            "callback_url",
            "status",
            "config_version",
            "token_prefix",
            "last_heartbeat_at",
            "is_stale",
            "created_at",
            "rotated_at",
        ]


class CredentialsOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    token = serializers.CharField()
    secret = serializers.CharField()


class BotListCreateApi(APIView):
    permission_classes = [IsTenantAdmin]

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=64)
        platform = serializers.ChoiceField(choices=Platform.choices)
        callback_url = TenantURLField(max_length=300)  # SSRF: the call itself is guarded too

    @extend_schema(responses={200: BotOutputSerializer(many=True)})
    def get(self, request):
        bots = selectors.bot_list(tenant_id=request.user.tenant_id)
        return Response(BotOutputSerializer(bots, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: CredentialsOutputSerializer})
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        bot, token, secret = services.bot_create(tenant_id=request.user.tenant_id, **data)
        return Response({"id": bot.id, "token": token, "secret": secret}, status=status.HTTP_201_CREATED)


class RotateOutputSerializer(serializers.Serializer):
    """Only what was rotated comes back: `token` and/or `secret`."""

    id = serializers.IntegerField()
    token = serializers.CharField(required=False)
    secret = serializers.CharField(required=False)


class BotRotateApi(APIView):
    """Issue a new token and/or signing secret; shown only in this response."""

    permission_classes = [IsTenantAdmin]

    class InputSerializer(serializers.Serializer):
        token = serializers.BooleanField(default=True)
        secret = serializers.BooleanField(default=True)

    @extend_schema(request=InputSerializer, responses={200: RotateOutputSerializer})
    def post(self, request, bot_id: int):
        data = validated_input(self.InputSerializer, request.data or {})
        bot = selectors.bot_get(tenant_id=request.user.tenant_id, bot_id=bot_id)
        return Response({"id": bot.id, **services.bot_credentials_rotate(bot=bot, **data)})


class _BotApi(APIView):
    authentication_classes = [BotTokenAuthentication]
    permission_classes = [IsBot]


class BotMessageApi(_BotApi):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        platform = serializers.ChoiceField(choices=Platform.choices)
        user_id = serializers.CharField(max_length=128)
        nickname = serializers.CharField(max_length=64, required=False, allow_blank=True)
        type = serializers.ChoiceField(choices=[t for t in Message.Type.values if t != Message.Type.SYSTEM])
        content = serializers.CharField(max_length=10000, required=False, allow_blank=True, trim_whitespace=False)
        message_id = serializers.CharField(max_length=100)
        file = serializers.FileField(required=False, allow_empty_file=False)

        def validate(self, attrs):
            if attrs["type"] == Message.Type.TEXT:
                if not (attrs.get("content") or "").strip():
                    raise serializers.ValidationError({"content": ["a text message needs content"]})
                if attrs.get("file"):
                    raise serializers.ValidationError({"file": ["a text message carries no file"]})
            elif not attrs.get("file") and not (attrs.get("content") or "").strip():
                raise serializers.ValidationError({"file": [f"a {attrs['type']} message needs a file (or a URL)"]})
            return attrs

    class OutputSerializer(serializers.Serializer):
        conversation_id = serializers.IntegerField(allow_null=True, help_text="null when the sender is blacklisted")
        message_id = serializers.IntegerField(allow_null=True, help_text="null when the sender is blacklisted")
        asr_task_id = serializers.CharField(required=False)
        duplicate = serializers.BooleanField()
        blocked = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses={202: OutputSerializer})
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        message, created = services.bot_message_receive(bot=request.auth, data=data)
        if message is None:  # a blacklisted sender: kept as an interception only
            body = {"conversation_id": None, "message_id": None, "duplicate": not created, "blocked": True}
            return Response(body, status=status.HTTP_202_ACCEPTED)
        body = {
            "conversation_id": message.conversation_id,
            "message_id": message.id,
            "duplicate": not created,
            "blocked": message.is_blocked,
        }
        if message.payload.get("asr_task_id"):
            body["asr_task_id"] = message.payload["asr_task_id"]
        return Response(body, status=status.HTTP_202_ACCEPTED)


class BotEventApi(_BotApi):
    class InputSerializer(serializers.Serializer):
        event = serializers.ChoiceField(choices=["message_blocked", "heartbeat", "status"])
        platform = serializers.ChoiceField(choices=Platform.choices, required=False)
        user_id = serializers.CharField(max_length=128, required=False)
        message_status = serializers.CharField(max_length=64, required=False, allow_blank=True)
        timestamp = serializers.DateTimeField(required=False, allow_null=True)
        status = serializers.DictField(required=False)

        def validate(self, attrs):
            if attrs["event"] == "message_blocked":
                missing = {f: ["required for message_blocked"] for f in ("platform", "user_id") if not attrs.get(f)}
                if missing:
                    raise serializers.ValidationError(missing)
            return attrs

    @extend_schema(request=InputSerializer, responses={202: dict})
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        return Response(services.bot_event_record(bot=request.auth, data=data), status=status.HTTP_202_ACCEPTED)


class BotHeartbeatApi(_BotApi):
    @extend_schema(request=None, responses={200: dict})
    def post(self, request):
        status_body = request.data if isinstance(request.data, dict) and request.data else None
        bot = services.bot_heartbeat_record(bot=request.auth, status=dict(status_body) if status_body else None)
        return Response({"status": "ok", "last_heartbeat_at": bot.last_heartbeat_at})


class BotConfigApi(_BotApi):
    @extend_schema(responses={200: dict})
    def get(self, request):
        return Response(selectors.bot_config_get(bot=request.auth))


class BotBlacklistApi(_BotApi):
    @extend_schema(responses={200: dict})
    def get(self, request):
        services.blacklist_bot_seen(bot=request.auth)  # a lagging bot is back: push what it lacks
        return Response(blacklist_snapshot(tenant_id=request.auth.tenant_id))


class GatewaySettingsApi(APIView):
    """`GET|PUT /api/v1/admin/bot-gateway`: the tenant's bot retry schedule (read at each attempt)."""

    permission_classes = [IsTenantAdmin]

    class InputSerializer(serializers.Serializer):
        retry_countdowns = serializers.ListField(
            child=serializers.FloatField(min_value=0, max_value=3600),
            max_length=10,
            help_text="seconds before each retry of a delivery or push; a delivery is failed after the last",
        )

    class OutputSerializer(serializers.Serializer):
        retry_countdowns = serializers.ListField(child=serializers.FloatField())

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        gateway = selectors.gateway_settings_get(tenant_id=request.user.tenant_id)
        return Response({"retry_countdowns": gateway.countdowns})

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def put(self, request):
        data = validated_input(self.InputSerializer, request.data)
        gateway = services.gateway_settings_update(
            tenant_id=request.user.tenant_id, retry_countdowns=data["retry_countdowns"]
        )
        return Response({"retry_countdowns": gateway.countdowns})


class MessageRetryDeliveryApi(APIView):
    """`POST /api/v1/messages/<id>/retry-delivery`: send a failed delivery to an IM customer again."""

    permission_classes = [IsConsultantOrAdmin]

    class OutputSerializer(serializers.Serializer):
        message_id = serializers.IntegerField()
        delivery = DeliverySerializer()

    @extend_schema(request=None, responses={202: OutputSerializer})
    def post(self, request, message_id: int):
        delivery = services.bot_delivery_retry(user=request.user, message_id=message_id)
        return Response(
            {"message_id": delivery.message_id, "delivery": {"status": delivery.status, "attempts": delivery.attempts}},
            status=status.HTTP_202_ACCEPTED,
        )
