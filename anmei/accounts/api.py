from __future__ import annotations

from django.conf import settings
from django.utils import translation
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
from anmei.common.throttling import AccountRateThrottle, AuthRateThrottle

_username = serializers.RegexField(r"^[\w.@+-]+\Z", min_length=1, max_length=150)
_slug = serializers.SlugField(max_length=50)


class RegisterApi(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    checks_credentials = True  # its own 401/403 (schema: anmei/common/schema.py)
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
        with translation.override(translation.get_language_from_request(request)):  # zh-CN pages: 中文 errors
            return self._post(request)

    def _post(self, request):
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
    checks_credentials = True  # its own 401/403 (schema: anmei/common/schema.py)
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
        # The socket is bound to this login token: logging it out closes the socket.
        if not isinstance(request.auth, AuthToken):
            raise ApplicationError("not_a_session", "only a login token can open a WebSocket", status_code=403)
        ticket = services.ws_ticket_issue(user=request.user, token=request.auth)
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


class GuestApi(APIView):
    """`POST /api/v1/auth/guest` — start consulting without inventing a username: a guest session."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    checks_credentials = True  # its own 401/403 (schema: anmei/common/schema.py)
    throttle_classes = [AuthRateThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        tenant = _slug
        nickname = serializers.CharField(required=False, allow_blank=True, max_length=64)

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        user = LoginApi.UserSerializer()
        guest = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses={201: OutputSerializer}, auth=[])
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        user, token = services.guest_register(tenant_slug=data["tenant"], nickname=data.get("nickname", ""))
        body = {"token": token, "user": LoginApi.UserSerializer(user).data, "guest": True}
        return Response(body, status=status.HTTP_201_CREATED)


class GuestCredentialsApi(APIView):
    """`POST /api/v1/auth/credentials` — a guest picks a username and password (their tokens are revoked)."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle, AccountRateThrottle]
    throttle_scope = "auth"

    class InputSerializer(serializers.Serializer):
        username = _username
        password = serializers.CharField(min_length=8, max_length=128, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={200: LoginApi.UserSerializer})
    def post(self, request):
        with translation.override(translation.get_language_from_request(request)):
            data = validated_input(self.InputSerializer, request.data)
            user = services.guest_credentials_set(
                user=request.user, username=data["username"], password=data["password"]
            )
        return Response(LoginApi.UserSerializer(user).data)


class ClinicSignupApi(APIView):
    """`POST /api/v1/tenants/signup`: a clinic asks to join (pending), with its first admin's login."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    checks_credentials = True  # its own 401/403 (schema: anmei/common/schema.py)
    throttle_classes = [AuthRateThrottle]
    throttle_scope = "signup"

    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=120)
        slug = serializers.SlugField(max_length=50)
        contact_email = serializers.EmailField(max_length=254)
        admin_username = serializers.CharField(max_length=150, required=False)
        admin_password = serializers.CharField(max_length=128, required=False, trim_whitespace=False)

        def validate(self, attrs):
            if bool(attrs.get("admin_username")) != bool(attrs.get("admin_password")):
                missing = "admin_password" if attrs.get("admin_username") else "admin_username"
                raise serializers.ValidationError({missing: ["admin_username and admin_password go together"]})
            return attrs

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        slug = serializers.CharField()
        status = serializers.CharField()
        admin_username = serializers.CharField(required=False)

    @extend_schema(
        tags=["tenants"],
        summary="Sign a clinic up",
        description="Creates a pending tenant and, with admin_username/admin_password, its first tenant "
        "admin, who can log in once a platform operator approves the tenant.",
        request=InputSerializer,
        responses={201: OutputSerializer},
        auth=[],
    )
    def post(self, request):
        data = validated_input(self.InputSerializer, request.data)
        tenant, admin = services.clinic_signup(
            name=data["name"],
            slug=data["slug"].lower(),
            contact_email=data["contact_email"],
            admin_username=data.get("admin_username") or "",
            admin_password=data.get("admin_password") or "",
        )
        body = {"id": tenant.id, "slug": tenant.slug, "status": tenant.status}
        if admin is not None:
            body["admin_username"] = admin.username
        return Response(body, status=status.HTTP_201_CREATED)
