"""Ways in: registration, guest sessions and their credentials, clinic sign-up."""

from __future__ import annotations

import logging
import secrets

from django.db import IntegrityError, transaction

from anmei.accounts.models import User
from anmei.accounts.services.handoffs import registration_hand_off
from anmei.accounts.services.tokens import auth_token_issue
from anmei.accounts.services.users import password_check, user_create
from anmei.common.errors import ApplicationError, ConflictError
from anmei.tenants.models import Tenant
from anmei.tenants.selectors import tenant_get_active
from anmei.tenants.services import tenant_signup

logger = logging.getLogger("anmei.accounts")


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
