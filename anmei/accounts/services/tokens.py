"""Login, API tokens and the one-use WebSocket tickets."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.db import transaction
from django.utils import timezone

from anmei.accounts.models import AuthToken, User
from anmei.accounts.services.users import user_sockets_close
from anmei.common.crypto import hash_token, new_token
from anmei.common.errors import ApplicationError
from anmei.common.redis import get_redis, tenant_key

logger = logging.getLogger("anmei.accounts")


def user_login(*, tenant_slug: str | None, username: str, password: str) -> tuple[User, str]:
    """Check credentials and issue a bearer token; the plain token is returned once and never stored."""
    # One answer for an unknown tenant, an inactive tenant and bad credentials (no enumeration),
    # after the same password work in each case (the backend hashes even for an unknown user).
    user = authenticate(None, username=username, password=password, tenant=tenant_slug or None)
    if user is None or (not tenant_slug and not user.is_operator) or (user.tenant_id and not user.tenant.is_active):
        raise ApplicationError("invalid_credentials", "invalid username or password", status_code=401)
    token = auth_token_issue(user=user)
    User.objects.filter(pk=user.pk).update(last_login=timezone.now())
    logger.info("user logged in", extra={"tenant_id": user.tenant_id, "user_id": user.id})
    return user, token


def auth_token_issue(*, user: User) -> str:
    token = new_token("anm_")
    AuthToken.objects.create(
        user=user,
        key_hash=hash_token(token),
        prefix=token[:12],
        expires_at=timezone.now() + timedelta(seconds=settings.AUTH_TOKEN_TTL_SECONDS),
    )
    return token


def auth_token_revoke_all(*, user: User) -> int:
    with transaction.atomic():
        deleted, _ = AuthToken.objects.filter(user=user).delete()
        user_sockets_close(user=user)
    return deleted


@dataclass(frozen=True)
class WsSession:
    """What an open socket was granted at connect: re-checked before every command it runs."""

    user_id: int
    tenant_id: int | None
    role: str
    token_id: int | None  # the bearer token that asked for the ticket; None for server-issued tickets


def ws_ticket_issue(*, user: User, token: AuthToken | None = None) -> str:
    """Issue a single-use WebSocket ticket that expires after WS_TICKET_TTL_SECONDS.

    The socket it opens is bound to `token` (the login token of the request): revoking that token
    closes the socket. The ticket carries the tenant id in clear so its Redis key can be
    tenant-scoped; the secret part is stored only as a hash.
    """
    tenant_part = str(user.tenant_id) if user.tenant_id else "p"
    ticket = f"{tenant_part}.{new_token('', 24)}"
    get_redis().set(
        tenant_key(user.tenant_id, "wsticket", hash_token(ticket)),
        json.dumps({"user_id": user.id, "tenant_id": user.tenant_id, "token_id": token.pk if token else None}),
        ex=settings.WS_TICKET_TTL_SECONDS,
    )
    return ticket


def ws_session_user(session: WsSession) -> User | None:
    """The socket's user as of now, or None when its access is gone.

    Gone means: the user was deleted, deactivated, moved or given another role, the tenant is no
    longer active, or the token the ticket came from was revoked or has expired.
    """
    user = (
        User.objects.select_related("tenant")
        .filter(pk=session.user_id, tenant_id=session.tenant_id, role=session.role, is_active=True)
        .first()
    )
    if user is None or (user.tenant_id and not user.tenant.is_active):
        return None
    if (
        session.token_id is not None
        and not AuthToken.objects.filter(pk=session.token_id, user_id=user.pk, expires_at__gt=timezone.now()).exists()
    ):
        return None
    return user


def ws_ticket_consume(ticket: str) -> tuple[User, WsSession] | None:
    """Redeem a ticket atomically (GETDEL): a second use, an expired or a forged ticket gives None."""
    if not ticket or len(ticket) > 128 or "." not in ticket:
        return None
    tenant_part = ticket.split(".", 1)[0]
    if tenant_part != "p" and not tenant_part.isdigit():
        return None
    tenant_id = None if tenant_part == "p" else int(tenant_part)
    raw = get_redis().getdel(tenant_key(tenant_id, "wsticket", hash_token(ticket)))
    if raw is None:
        return None
    data = json.loads(raw)
    user = User.objects.filter(pk=data["user_id"], tenant_id=data["tenant_id"]).first()
    if user is None:
        return None
    session = WsSession(user_id=user.pk, tenant_id=user.tenant_id, role=user.role, token_id=data.get("token_id"))
    user = ws_session_user(session)
    return None if user is None else (user, session)
