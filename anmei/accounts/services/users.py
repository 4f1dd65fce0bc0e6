"""Users: create, password rules, deactivation, and what a change of access closes."""

from __future__ import annotations

import logging

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from anmei.accounts.models import AuthToken, User
from anmei.common import realtime
from anmei.common.errors import ApplicationError
from anmei.tenants.models import Tenant

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
