from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from anmei.accounts.models import User
from anmei.apikeys.models import ApiKey, ApiKeyAudit
from anmei.audit.services import SECRET, audit_record
from anmei.common.crypto import hash_token, new_token
from anmei.common.errors import ApplicationError, NotFoundError
from anmei.common.permissions import is_operator

logger = logging.getLogger("anmei.apikeys")

KEY_PREFIX = "ak_"


def api_key_create(*, actor: User, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """Create a key for the actor's tenant; return it with the plain key (shown this once only)."""
    if actor.role != User.Role.ADMIN or not actor.tenant_id:
        raise ApplicationError("permission_denied", "tenant admins only", status_code=403)
    unknown = sorted(set(scopes) - set(ApiKey.Scope.values))
    if unknown or not scopes:
        raise ApplicationError(
            "validation_error",
            "scopes: " + (f"unknown scope {unknown[0]}" if unknown else "at least one scope"),
            details={"fields": {"scopes": [f"choose from {', '.join(ApiKey.Scope.values)}"]}},
        )
    key = new_token(KEY_PREFIX, 32)
    with transaction.atomic():
        api_key = ApiKey.objects.create(
            tenant_id=actor.tenant_id,
            name=name,
            prefix=key[:12],
            key_hash=hash_token(key),
            scopes=sorted(set(scopes)),
            created_by=actor,
            rate_limit_per_minute=settings.API_KEY_RATE_LIMIT_PER_MINUTE,
        )
        ApiKeyAudit.objects.create(tenant_id=actor.tenant_id, api_key=api_key, actor=actor, action="created")
        audit_record(
            tenant_id=actor.tenant_id,
            action="create",
            object_type="api_key",
            object_id=api_key.pk,
            changes={"name": [None, name], "scopes": [None, api_key.scopes], "key": [None, SECRET]},
            actor=actor,
        )
    logger.info("api key created", extra={"tenant_id": actor.tenant_id, "api_key_id": api_key.id, "user_id": actor.id})
    return api_key, key


def api_key_revoke(*, actor: User, api_key_id: int) -> ApiKey:
    """Revoke a key of the actor's tenant (another tenant's id is a 404; operators: any tenant's).

    Revoking twice changes nothing.
    """
    with transaction.atomic():
        qs = ApiKey.objects.select_for_update().filter(pk=api_key_id)
        if not is_operator(actor):
            qs = qs.filter(tenant_id=actor.tenant_id) if actor.tenant_id else qs.none()
        api_key = qs.first()
        if api_key is None:
            raise NotFoundError("api key")
        if api_key.revoked_at is None:
            api_key.revoked_at = timezone.now()
            api_key.save(update_fields=["revoked_at"])
            ApiKeyAudit.objects.create(tenant_id=api_key.tenant_id, api_key=api_key, actor=actor, action="revoked")
            audit_record(
                tenant_id=api_key.tenant_id,
                action="revoke",
                object_type="api_key",
                object_id=api_key.pk,
                changes={"revoked_at": [None, api_key.revoked_at.isoformat()]},
                actor=actor,
            )
            logger.info(
                "api key revoked", extra={"tenant_id": api_key.tenant_id, "api_key_id": api_key.id, "user_id": actor.id}
            )
    return api_key
