"""Bot instance authentication: `Authorization: Bearer bot_…`, looked up by SHA-256."""

from __future__ import annotations

from django.db.models import F
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission

from anmei.bots.models import BotInstance
from anmei.bots.services.instances import TOKEN_PREFIX
from anmei.common.bearer import bearer_token
from anmei.common.crypto import hash_token, tokens_equal
from anmei.tenants.models import Tenant


def _bot_for_token_hash(digest: str) -> BotInstance | None:
    """The bot holding this token hash, with its tenant's status as `tenant_status` (one indexed read)."""
    return BotInstance.objects.annotate(tenant_status=F("tenant__status")).filter(token_hash=digest).first()


class BotTokenAuthentication(authentication.BaseAuthentication):
    """Authenticate a bot instance; the bot becomes `request.user` and `request.auth`.

    Only the token's hash is stored; the unique index finds the row and the hashes are compared
    again in constant time. Disabled bots and bots of inactive tenants are refused.
    """

    keyword = "Bearer"

    def authenticate(self, request):
        raw = bearer_token(request)
        if raw is None:
            return None
        if not raw.startswith(TOKEN_PREFIX):
            raise exceptions.AuthenticationFailed("a bot instance token is required", code="invalid_token")
        digest = hash_token(raw)
        bot = _bot_for_token_hash(digest)
        if bot is None or not tokens_equal(bot.token_hash, digest):
            raise exceptions.AuthenticationFailed("invalid bot token", code="invalid_token")
        if bot.status != BotInstance.Status.ACTIVE:
            raise exceptions.AuthenticationFailed("bot instance is disabled", code="bot_disabled")
        if not Tenant.status_is_active(bot.tenant_status):
            raise exceptions.AuthenticationFailed(f"tenant is {bot.tenant_status}", code="tenant_not_active")
        return bot, bot

    def authenticate_header(self, request):
        return self.keyword


class IsBot(BasePermission):
    message = "bot instances only"

    def has_permission(self, request, view):
        return isinstance(request.auth, BotInstance)


class BotTokenScheme(OpenApiAuthenticationExtension):
    target_class = "anmei.bots.authentication.BotTokenAuthentication"
    name = "botBearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "bot instance token (bot_…)"}
