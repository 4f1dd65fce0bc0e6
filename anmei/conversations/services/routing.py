"""Routing settings of a tenant (docs/routing.md): who gets waiting work, how much, and when."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import IntegrityError, transaction

from anmei.audit.services import audit_changes, audit_record, audit_snapshot
from anmei.conversations.models import RoutingSettings
from anmei.conversations.selectors import routing_settings_get
from anmei.jobs.services import job_schedule

logger = logging.getLogger(__name__)


FIELDS = ("mode", "capacity_per_consultant", "business_hours", "off_hours_message")


def routing_settings_update(*, tenant_id: int, data: dict[str, Any]) -> RoutingSettings:
    """Replace the tenant's routing settings with validated `data` (the API's serializer checked it).

    The audit row (`object_type: "routing"`, only the fields that changed) commits with the change.
    """
    with transaction.atomic():
        created = False
        try:
            with transaction.atomic():
                settings, created = RoutingSettings.objects.select_for_update().get_or_create(tenant_id=tenant_id)
        except IntegrityError:
            settings = RoutingSettings.objects.select_for_update().get(tenant_id=tenant_id)
        before = {} if created else audit_snapshot(settings, FIELDS)
        for field in FIELDS:
            setattr(settings, field, data[field])
        settings.save()
        changes = audit_changes(before, audit_snapshot(settings, FIELDS))
        if created or changes:
            audit_record(
                tenant_id=tenant_id,
                action="create" if created else "update",
                object_type="routing",
                object_id=settings.pk,
                changes=changes,
            )
    assignment_schedule(tenant_id=tenant_id, reason="settings")
    logger.info(
        "routing settings updated",
        extra={"tenant_id": tenant_id, "mode": settings.mode, "capacity": settings.capacity_per_consultant},
    )
    return settings


ASSIGN_JOB = {"kind": "conversations.assign", "task": "workers.conversations.assign"}


def assignment_schedule(*, tenant_id: int, reason: str) -> None:
    """Ask for an assignment round once the current transaction commits (nothing in manual mode).

    Each call is its own durable job: a round finds all the work there is, so an extra one costs
    a few queries, and a lost one is caught by the sweep.
    """
    if routing_settings_get(tenant_id=tenant_id).mode == RoutingSettings.Mode.MANUAL:
        return
    job_schedule(
        **ASSIGN_JOB,
        key=f"{tenant_id}:{reason}:{uuid.uuid4().hex}",
        tenant_id=tenant_id,
        payload={"tenant_id": tenant_id, "reason": reason},
    )


def assignment_consultant_available(*, tenant_id: int, user_id: int, role: str) -> None:
    """A consultant came online (or back from away): they may take waiting work."""
    if role == "consultant":
        assignment_schedule(tenant_id=tenant_id, reason=f"online:{user_id}")
