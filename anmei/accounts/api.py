from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from anmei.accounts import services
from anmei.accounts.models import AuthToken
from anmei.accounts.throttling import LoginAccountGlobalThrottle, LoginAccountThrottle
from anmei.common.api import validated_input
from anmei.common.errors import ApplicationError
from anmei.common.throttling import AuthRateThrottle

_username = serializers.RegexField(r"^[\w.@+-]+\Z", min_length=1, max_length=150)
_slug = serializers.SlugField(max_length=50)


class RegisterApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle, LoginAccountThrottle, LoginAccountGlobalThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        tenant = _slug
        username = _username
        password = serializers.CharField(min_length=8, max_length=128, trim_whitespace=False)
        email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
        phone = serializers.RegexField(r"^\+?[0-9 -]{5,32}\Z", required=False, allow_blank=True, max_length=32)
        nickname = serializers.CharField(required=False, allow_blank=True, max_length=64)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        tenant = serializers.CharField(source="tenant.slug")
        role = serializers.CharField()
        created_at = serializers.DateTimeField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, auth=[])
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        user = services.user_register(
            tenant_slug=data["tenant"],
            username=data["username"],
            password=data["password"],
            email=data.get("email", ""),
            phone=data.get("phone", ""),
            nickname=data.get("nickname", ""),
        )
        return Response(self.OutputSerializer(user).data, status=status.HTTP_201_CREATED)


class LoginApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle, LoginAccountThrottle, LoginAccountGlobalThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        tenant = serializers.SlugField(max_length=50, required=False, allow_blank=True, allow_null=True)
        username = serializers.CharField(max_length=150)
        password = serializers.CharField(max_length=128, trim_whitespace=False)

    class UserSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        username = serializers.CharField()
        role = serializers.CharField()

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        user = serializers.DictField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer}, auth=[])
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        user, token = services.user_login(
            tenant_slug=data.get("tenant") or None, username=data["username"], password=data["password"]
        )
        return Response({"token": token, "user": self.UserSerializer(user).data})


class WsTicketApi(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle, LoginAccountThrottle, LoginAccountGlobalThrottle]
    throttle_scope = "auth"

    class OutputSerializer(serializers.Serializer):
        ticket = serializers.CharField()
        expires_in = serializers.IntegerField()

    @extend_schema(request=None, responses={200: OutputSerializer})
    def post(self, request):
        ticket = services.ws_ticket_issue(user=request.user)
        return Response({"ticket": ticket, "expires_in": settings.WS_TICKET_TTL_SECONDS})


class LogoutApi(APIView):
    """Revoke the bearer token this request came with (API.md "Sessions")."""

    @extend_schema(request=None, responses={204: None})
    def post(self, request):
        token = request.auth
        if not isinstance(token, AuthToken):  # authenticated some other way (an API key): nothing to revoke
            raise ApplicationError("not_a_session", "only a login token can log out", status_code=400)
        services.auth_token_revoke(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


class PasswordChangeApi(APIView):
    """Change the own password; every token of the user (this one included) is revoked."""

    throttle_classes = [AuthRateThrottle, LoginAccountThrottle, LoginAccountGlobalThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        old_password = serializers.CharField(max_length=128, trim_whitespace=False)
        new_password = serializers.CharField(max_length=128, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        services.user_password_change(
            user=request.user, old_password=data["old_password"], new_password=data["new_password"]
        )
        return Response(status=status.HTTP_204_NO_CONTENT)
