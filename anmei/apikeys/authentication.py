"""`Authorization: Bearer ak_…`: a tenant API key, limited to the endpoints its scopes cover.

The scope table below is the whole list of endpoints a key can reach (by URL name and method);
anything else is a 403 for a key even when the admin behind it could use it. Each request counts
against the key's per-minute limit and bumps its usage count and last-used time.
"""

from __future__ import annotations

import time

from django.db.models import F
from django.utils import timezone
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions

from anmei.apikeys.models import ApiKey
from anmei.apikeys.services import KEY_PREFIX
from anmei.common.bearer import bearer_token
from anmei.common.crypto import hash_token, tokens_equal
from anmei.common.redis import get_redis, tenant_key

S = ApiKey.Scope
# (HTTP method, URL name) -> the scope a key needs for it.
SCOPE_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "conversation-list"): S.CONVERSATIONS_READ,
    ("GET", "conversation-messages"): S.CONVERSATIONS_READ,
    ("GET", "message-search"): S.CONVERSATIONS_READ,
    ("POST", "conversation-messages"): S.MESSAGES_WRITE,
    ("GET", "registration-automation-dashboard"): S.STATS_READ,
    ("GET", "mcp-metrics"): S.STATS_READ,
    ("GET", "blacklist"): S.BLACKLIST_READ,
    ("POST", "blacklist"): S.BLACKLIST_WRITE,
    ("POST", "blacklist-batch"): S.BLACKLIST_WRITE,
    ("DELETE", "blacklist-entry"): S.BLACKLIST_WRITE,
}


def required_scope(request) -> str | None:
    match = getattr(getattr(request, "_request", request), "resolver_match", None)
    return SCOPE_ROUTES.get((request.method, match.url_name if match else ""))


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request):
        raw = bearer_token(request)
        if raw is None or not raw.startswith(KEY_PREFIX):
            return None
        api_key = ApiKey.objects.select_related("tenant", "created_by").filter(key_hash=hash_token(raw)).first()
        if api_key is None or not tokens_equal(api_key.key_hash, hash_token(raw)) or api_key.is_revoked:
            raise exceptions.AuthenticationFailed("invalid or revoked API key", code="invalid_token")
        if not api_key.tenant.is_active:
            raise exceptions.AuthenticationFailed(f"tenant is {api_key.tenant.status}", code="tenant_not_active")
        owner = api_key.created_by
        if not (owner.is_active and owner.role == "admin" and owner.tenant_id == api_key.tenant_id):
            raise exceptions.AuthenticationFailed(
                "the admin who created this key has lost access", code="invalid_token"
            )
        scope = required_scope(request)
        if scope is None or scope not in api_key.scopes:
            raise exceptions.PermissionDenied(
                f"this API key's scopes do not cover {request.method} {request.path}"
                + (f" (needs {scope})" if scope else "")
            )
        self._count(api_key)
        return owner, api_key

    @staticmethod
    def _count(api_key: ApiKey) -> None:
        minute = int(time.time() // 60)
        key = tenant_key(api_key.tenant_id, "apikey_rate", api_key.id, minute)
        pipe = get_redis().pipeline()
        pipe.incr(key)
        pipe.expire(key, 61)
        used, _ = pipe.execute()
        if used > api_key.rate_limit_per_minute:
            raise exceptions.Throttled(wait=60 - time.time() % 60)
        ApiKey.objects.filter(pk=api_key.pk).update(usage_count=F("usage_count") + 1, last_used_at=timezone.now())

    def authenticate_header(self, request):
        return "Bearer"


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "anmei.apikeys.authentication.ApiKeyAuthentication"
    name = "apiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "tenant API key `ak_…` (scoped)"}
