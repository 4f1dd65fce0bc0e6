"""Provision a tenant's staff accounts from the command line (bootstrap_tenant, seed_demo).

It lives in accounts, not tenants, because it writes users: tenants stays below accounts in the
import layers (see the import-linter contracts in pyproject.toml).
"""

from __future__ import annotations

from django.db import transaction

from anmei.accounts.models import User
from anmei.accounts.services import user_access_changed, user_create
from anmei.tenants.models import Tenant
from anmei.tenants.services import tenant_ensure_approved


def tenant_bootstrap(
    *, slug: str, name: str, admins: list[tuple[str, str]], consultants: list[tuple[str, str]] = ()
) -> tuple[Tenant, list[str]]:
    """Create or update an approved tenant and its staff accounts; return what changed.

    Idempotent: a second run with the same arguments writes nothing (passwords are re-hashed only
    when they differ, because a fresh salt would count as a change).
    """
    with transaction.atomic():
        tenant, changes = tenant_ensure_approved(slug=slug, name=name)
        for role, accounts in ((User.Role.ADMIN, admins), (User.Role.CONSULTANT, consultants)):
            for username, password in accounts:
                user = User.objects.filter(tenant=tenant, username=username).first()
                if user is None:
                    user_create(tenant=tenant, username=username, password=password, role=role)
                    changes.append(f"created {role} {username}")
                    continue
                fields = []
                if user.role != role:
                    user.role = role
                    user.is_staff = role == User.Role.ADMIN
                    fields += ["role", "is_staff"]
                if not user.check_password(password):
                    user.set_password(password)
                    fields.append("password")
                if not user.is_active:
                    user.is_active = True
                    fields.append("is_active")
                if fields:
                    user.save(update_fields=fields)
                    user_access_changed(user=user, fields=set(fields))
                    changes.append(f"updated {role} {username} ({', '.join(fields)})")
    return tenant, changes
