from __future__ import annotations

from anmei.common.errors import ApplicationError
from anmei.tenants.models import Tenant


def tenant_get_by_slug(slug: str) -> Tenant | None:
    return Tenant.objects.filter(slug=slug).first()


def tenant_get_active(slug: str) -> Tenant:
    """Return the approved tenant with this slug, or raise the API error a client should see."""
    tenant = tenant_get_by_slug(slug)
    if tenant is None:
        raise ApplicationError("tenant_not_found", f"unknown tenant '{slug}'", status_code=404)
    if not tenant.is_active:
        raise ApplicationError(
            "tenant_not_active",
            f"tenant '{slug}' is {tenant.status}",
            status_code=403,
            details={"status": tenant.status},
        )
    return tenant
