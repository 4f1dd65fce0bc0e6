from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from anmei.audit.models import AuditEntry


def audit_entry_list(*, tenant_id: int | None, filters: dict[str, Any]) -> QuerySet[AuditEntry]:
    """Return audit rows, newest first; `tenant_id=None` means every tenant (operators only)."""
    qs = AuditEntry.objects.all()
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    if filters.get("from"):
        qs = qs.filter(at__gte=filters["from"])
    if filters.get("to"):
        qs = qs.filter(at__lt=filters["to"])
    if filters.get("object_type"):
        qs = qs.filter(object_type=filters["object_type"])
    if filters.get("actor"):
        actor = filters["actor"]
        qs = qs.filter(actor_id=int(actor)) if actor.isdigit() else qs.filter(actor_username=actor)
    return qs.order_by("-at", "-id")
