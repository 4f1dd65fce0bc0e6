from __future__ import annotations

import logging

from django.db import IntegrityError, transaction
from django.utils import timezone

from anmei.common import realtime
from anmei.common.errors import ApplicationError
from anmei.tenants.models import Tenant

logger = logging.getLogger("anmei.tenants")


def tenant_signup(*, name: str, slug: str, contact_email: str) -> Tenant:
    try:
        with transaction.atomic():
            tenant = Tenant.objects.create(name=name, slug=slug, contact_email=contact_email)
    except IntegrityError as exc:
        raise ApplicationError(
            "slug_taken", f"tenant slug '{slug}' is taken", status_code=409, details={"field": "slug"}
        ) from exc
    logger.info("tenant signed up", extra={"tenant_id": tenant.id, "slug": slug})
    return tenant


def tenant_set_status(*, tenant: Tenant, status: str) -> Tenant:
    """Move a tenant to `status`; approving twice is a no-op that keeps the first approval time.

    Leaving the active status closes every open socket of the tenant's users after the commit.
    """
    with transaction.atomic():
        tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
        if tenant.status == status:
            return tenant
        tenant.status = status
        if status == Tenant.Status.APPROVED and tenant.approved_at is None:
            tenant.approved_at = timezone.now()
        tenant.save(update_fields=["status", "approved_at"])
        if not tenant.is_active:
            tenant_id = tenant.pk
            transaction.on_commit(lambda: realtime.sockets_close_tenant(tenant_id))
    logger.info("tenant status changed", extra={"tenant_id": tenant.id, "status": status})
    return tenant


def tenant_approve(*, tenant: Tenant) -> Tenant:
    return tenant_set_status(tenant=tenant, status=Tenant.Status.APPROVED)


def tenant_suspend(*, tenant: Tenant) -> Tenant:
    return tenant_set_status(tenant=tenant, status=Tenant.Status.SUSPENDED)


def tenant_ensure_approved(*, slug: str, name: str) -> tuple[Tenant, list[str]]:
    """Create the tenant `slug` approved, or rename and approve it; return it and what changed.

    Call it inside the caller's transaction: the row stays locked until that commits, so two
    bootstraps of the same slug run one after the other.
    """
    changes: list[str] = []
    tenant, created = Tenant.objects.select_for_update().get_or_create(
        slug=slug, defaults={"name": name, "status": Tenant.Status.APPROVED, "contact_email": ""}
    )
    if created:
        tenant.approved_at = timezone.now()
        tenant.save(update_fields=["approved_at"])
        changes.append(f"created tenant {slug}")
        return tenant, changes
    if tenant.name != name:
        tenant.name = name
        tenant.save(update_fields=["name"])
        changes.append(f"renamed tenant {slug}")
    if tenant.status != Tenant.Status.APPROVED:
        tenant_approve(tenant=tenant)
        changes.append(f"approved tenant {slug}")
    return tenant, changes
