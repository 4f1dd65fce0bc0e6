from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from anmei.accounts.models import AuthToken, User
from anmei.audit.services import audit_record
from anmei.common import realtime
from anmei.common.crypto import hash_token, new_token
from anmei.common.errors import ApplicationError, ConflictError
from anmei.common.redis import get_redis, tenant_key
from anmei.jobs.models import Job
from anmei.jobs.services import job_schedule
from anmei.tenants.models import Tenant
from anmei.tenants.selectors import tenant_get_active
from anmei.tenants.services import tenant_signup

logger = logging.getLogger("anmei.accounts")


def user_create(
    *,
    tenant: Tenant | None,
    username: str,
    password: str | None,
    role: str = User.Role.CUSTOMER,
    email: str = "",
    phone: str = "",
    nickname: str = "",
    source: str = "web",
    platform_user_id: str = "",
) -> User:
    user = User(
        tenant=tenant,
        username=username,
        role=role,
        email=email or "",
        phone=phone or "",
        nickname=nickname or "",
        source=source,
        platform_user_id=platform_user_id,
    )  # is_staff / is_superuser follow the role in User.save
    if password:
        password_check(password=password, user=user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
            if role != User.Role.CUSTOMER:  # staff accounts are tenant configuration; customers are not
                audit_record(
                    tenant_id=user.tenant_id,
                    action="create",
                    object_type="user",
                    object_id=user.pk,
                    changes={"username": [None, username], "role": [None, role], "password": [None, "***"]},
                )
    except IntegrityError as exc:
        raise ApplicationError(
            "username_taken", f"username '{username}' is taken", status_code=409, details={"field": "username"}
        ) from exc
    return user


def password_check(*, password: str, user: User | None = None) -> None:
    """Run Django's password validators; a weak password is a 400 naming the `password` field."""
    try:
        validate_password(password, user)
    except DjangoValidationError as exc:
        raise ApplicationError(
            "validation_error", f"password: {exc.messages[0]}", details={"fields": {"password": exc.messages}}
        ) from None


def user_password_change(*, user: User, old_password: str, new_password: str) -> None:
    """Change the password after checking the old one; every bearer token of the user is revoked.

    (User.save revokes the tokens and closes the open sockets on any password change: this path,
    admin resets, scripts.)
    """
    if not user.check_password(old_password):
        raise ApplicationError(
            "invalid_credentials", "old password is wrong", status_code=400, details={"field": "old_password"}
        )
    password_check(password=new_password, user=user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    logger.info("password changed", extra={"tenant_id": user.tenant_id, "user_id": user.id})


def user_sockets_close(*, user: User, token_id: int | None = None) -> None:
    """Close the user's open WebSockets (4401) once the current transaction commits.

    Every service that takes access away calls this (logout closes only the sockets opened with
    that token; the rest close them all); the consumers also re-check before each command.
    """
    tenant_id, user_id = user.tenant_id, user.pk
    transaction.on_commit(lambda: realtime.sockets_close_user(tenant_id, user_id, token_id=token_id))


def auth_token_revoke(*, token: AuthToken) -> None:
    with transaction.atomic():
        AuthToken.objects.filter(pk=token.pk).delete()
        user_sockets_close(user=token.user, token_id=token.pk)
    logger.info("logged out", extra={"tenant_id": token.user.tenant_id, "user_id": token.user_id})


def users_deactivate(*, users) -> int:
    """Deactivate the users of a queryset: their tokens are revoked and their sockets closed."""
    with transaction.atomic():
        affected = list(users.select_for_update())
        AuthToken.objects.filter(user__in=affected).delete()
        User.objects.filter(pk__in=[u.pk for u in affected]).update(is_active=False)
        for user in affected:
            user_sockets_close(user=user)
    logger.info("users deactivated", extra={"user_ids": [u.pk for u in affected]})
    return len(affected)


def users_tokens_revoke(*, users) -> int:
    """Revoke every bearer token of the users of a queryset and close their sockets."""
    with transaction.atomic():
        affected = list(users)
        deleted, _ = AuthToken.objects.filter(user__in=affected).delete()
        for user in affected:
            user_sockets_close(user=user)
    return deleted


def user_access_changed(*, user: User, fields: set[str]) -> None:
    """Tell open sockets that the user's access changed (role, tenant, active flag or password).

    Doors that save a user another way (the Django admin's forms) call this after the save; a
    change of any of those fields closes the user's sockets, which then reconnect with a fresh
    ticket under the new rights (or cannot).
    """
    if fields & {"role", "tenant", "is_active", "password"}:
        user_sockets_close(user=user)


REGISTRATION_JOB = {"kind": "automation.start", "task": "workers.registration.start"}


def registration_hand_off(*, customer: User) -> Job | None:
    """A new customer's registration automation (welcome, default conversation, consultants told).

    Call inside the transaction that creates the customer (web sign-up here, a bot's first message
    of a new IM customer in anmei.bots): a durable job (anmei.jobs) that commits with them and
    names the automation's task — automation sits above accounts and reads it, so accounts hands
    the work over by task name instead of importing it. The task starts the run (or does nothing
    where the tenant has automation off); one job per customer.
    """
    if customer.role != User.Role.CUSTOMER or not customer.tenant_id:
        return None
    return job_schedule(
        **REGISTRATION_JOB,
        key=f"customer:{customer.id}",
        tenant_id=customer.tenant_id,
        payload={"customer_id": customer.id},
        lease_seconds=settings.AUTOMATION_STEP_LEASE_SECONDS,
    )


ACCOUNT_LOCKOUT_JOB = {"kind": "accounts.lockout_notice", "task": "workers.notifications.account_lockout"}


def account_lockout_hand_off(*, account: dict, episode_key: str) -> Job | None:
    """Tell the holder that a login limit of their account tripped: once per episode.

    Called by the login doors' account throttles (anmei.accounts.throttling). The first refusal marks an episode in
    the cache (ACCOUNT_LOCKOUT_EPISODE_SECONDS, atomic add); only that request looks the account up
    and writes the notice's durable job, in its own short transaction, naming the notifications
    task (notifications sits above accounts). The key names the episode, so a repeat is a no-op.
    Runs inside a request that answers 429: nothing here may turn it into a 500, so any failure
    is logged (and the mark dropped, for the next refusal to try again).
    """
    from django.core.cache import cache

    started = int(timezone.now().timestamp())
    try:
        if not cache.add(episode_key, started, timeout=settings.ACCOUNT_LOCKOUT_EPISODE_SECONDS):
            return None  # this episode's holder was told already
    except Exception:  # noqa: BLE001 - the cache is down: the 429 stands, nobody is told now
        logger.warning("account lock-out episode not recorded", exc_info=True)
        return None
    try:
        if "user_id" in account:
            user = User.objects.filter(pk=account["user_id"], is_active=True).first()
        else:
            user = User.objects.filter(
                tenant__slug__iexact=account["tenant"], username__iexact=account["username"], is_active=True
            ).first()
        if user is None or not user.tenant_id:
            return None  # no such account (or an operator: no tenant inbox); the mark stays
        with transaction.atomic():
            job = job_schedule(
                **ACCOUNT_LOCKOUT_JOB,
                key=f"user:{user.id}:{started}",
                tenant_id=user.tenant_id,
                payload={"user_id": user.id, "episode": started},
            )
    except Exception:  # noqa: BLE001 - the database is down: log it, answer the 429 anyway
        logger.exception("account lock-out notice not recorded")
        try:
            cache.delete(episode_key)
        except Exception:  # noqa: BLE001
            pass
        return None
    logger.info("account lock-out notice scheduled", extra={"tenant_id": user.tenant_id, "user_id": user.id})
    return job


def user_register(
    *, tenant_slug: str, username: str, password: str, email: str = "", phone: str = "", nickname: str = ""
) -> User:
    """Create a customer of an approved tenant and hand their registration run over, in one transaction.

    The hand-off job commits with the customer (nothing to lose between the two) and reaches the
    broker only after that commit.
    """
    tenant = tenant_get_active(tenant_slug)
    with transaction.atomic():
        user = user_create(
            tenant=tenant, username=username, password=password, email=email, phone=phone, nickname=nickname
        )
        registration_hand_off(customer=user)
    logger.info("customer registered", extra={"tenant_id": tenant.id, "user_id": user.id})
    return user


def guest_register(*, tenant_slug: str, nickname: str = "") -> tuple[User, str]:
    """Start a web customer without inventing credentials: a guest account and its bearer token.

    The username is generated (`guest-<random>`) and the password unusable, so nobody can log in as
    the guest; the tab holds the token. The guest may later choose a username and password
    (`guest_credentials_set`) to come back from another device. Registration automation runs as for
    any sign-up.
    """
    tenant = tenant_get_active(tenant_slug)
    with transaction.atomic():
        user = user_create(tenant=tenant, username=f"guest-{secrets.token_hex(5)}", password=None, nickname=nickname)
        registration_hand_off(customer=user)
        token = auth_token_issue(user=user)
    logger.info("guest started", extra={"tenant_id": tenant.id, "user_id": user.id})
    return user, token


def guest_credentials_set(*, user: User, username: str, password: str) -> User:
    """Give a guest customer a username and password of their own (once: only while they have none).

    Saving the password revokes the guest's tokens (as every password change does): the caller logs
    in again with the new credentials.
    """
    if user.role != User.Role.CUSTOMER or user.source != "web" or user.has_usable_password():
        raise ConflictError("credentials_already_set", "this account already has a password")
    password_check(password=password, user=user)
    user.username = username
    user.set_password(password)
    try:
        with transaction.atomic():
            user.save(update_fields=["username", "password"])
    except IntegrityError as exc:
        raise ApplicationError(
            "username_taken", f"username '{username}' is taken", status_code=409, details={"field": "username"}
        ) from exc
    logger.info("guest credentials set", extra={"tenant_id": user.tenant_id, "user_id": user.id})
    return user


def clinic_signup(
    *, name: str, slug: str, contact_email: str, admin_username: str = "", admin_password: str = ""
) -> tuple[Tenant, User | None]:
    """Sign a clinic up (pending) together with its first tenant admin, in one transaction.

    The admin cannot log in until an operator approves the tenant (login refuses users of a tenant
    that is not approved); from then on they sign in with the login they chose here, so an
    approved clinic always has someone to run it. The password is checked before anything is
    written. Without `admin_username` the clinic gets no admin (then `manage.py bootstrap_tenant`).
    """
    if admin_username:
        password_check(password=admin_password, user=User(username=admin_username, email=contact_email))
    with transaction.atomic():
        tenant = tenant_signup(name=name, slug=slug, contact_email=contact_email)
        admin = None
        if admin_username:
            admin = user_create(
                tenant=tenant,
                username=admin_username,
                password=admin_password,
                role=User.Role.ADMIN,
                email=contact_email,
            )
    return tenant, admin


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
