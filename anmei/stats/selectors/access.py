"""Whose figures a user may read (docs/metrics.md "Serving")."""

from __future__ import annotations

from django.db.models import Q

from anmei.accounts.models import User
from anmei.common.permissions import is_operator
from anmei.tenants.models import Tenant


def stats_scope(*, user: User, tenant: str | None, consultant_id: int | None) -> tuple[list[int] | None, int | None]:
    """Whose figures a user may read: (tenant ids or None for all tenants, forced consultant id).

    Consultants see only their own figures; tenant admins their tenant; operators any tenant by id
    or slug, or every tenant side by side when they name none.
    """
    from anmei.common.errors import ApplicationError, NotFoundError

    if is_operator(user):
        if not tenant:
            return None, consultant_id
        by_id = Q(id=int(tenant)) if tenant.isdigit() and len(tenant) <= 18 else Q(pk__in=[])
        match = Tenant.objects.filter(Q(slug=tenant) | by_id).first()
        if match is None:
            raise NotFoundError("tenant")
        return [match.id], consultant_id
    if user.role == User.Role.ADMIN:
        return [user.tenant_id], consultant_id
    if user.role == User.Role.CONSULTANT:
        if consultant_id is not None and consultant_id != user.id:
            raise ApplicationError("permission_denied", "consultants see only their own figures", status_code=403)
        return [user.tenant_id], user.id
    raise ApplicationError("permission_denied", "staff only", status_code=403)
