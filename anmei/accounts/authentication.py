from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from anmei.accounts.models import AuthToken
from anmei.common.bearer import bearer_token
from anmei.common.crypto import hash_token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <token>`; tokens are looked up by SHA-256, never stored in clear."""

    keyword = "Bearer"

    def authenticate(self, request):
        raw = bearer_token(request)
        if raw is None or not raw.startswith("anm_"):
            return None  # another scheme's bearer token (bot tokens are handled by their own class)
        token = AuthToken.objects.select_related("user", "user__tenant").filter(key_hash=hash_token(raw)).first()
        now = timezone.now()
        if token is None or token.expires_at <= now:
            raise exceptions.AuthenticationFailed("invalid or expired token", code="invalid_token")
        user = token.user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("user is inactive", code="user_inactive")
        if user.tenant_id and not user.tenant.is_active:
            raise exceptions.AuthenticationFailed(f"tenant is {user.tenant.status}", code="tenant_not_active")
        if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
            AuthToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return user, token

    def authenticate_header(self, request):
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "anmei.accounts.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer"}
