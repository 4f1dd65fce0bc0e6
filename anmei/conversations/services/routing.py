"""Routing settings of a tenant (docs/routing.md): who gets waiting work, how much, and when."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction

from anmei.conversations.models import RoutingSettings

logger = logging.getLogger(__name__)


def routing_settings_update(*, tenant_id: int, data: dict[str, Any]) -> RoutingSettings:
    """Replace the tenant's routing settings with validated `data` (the API's serializer checked it)."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                settings, _ = RoutingSettings.objects.select_for_update().get_or_create(tenant_id=tenant_id)
        except IntegrityError:
            settings = RoutingSettings.objects.select_for_update().get(tenant_id=tenant_id)
        for field in ("mode", "capacity_per_consultant", "business_hours", "off_hours_message"):
            setattr(settings, field, data[field])
        settings.save()
    logger.info(
        "routing settings updated",
        extra={"tenant_id": tenant_id, "mode": settings.mode, "capacity": settings.capacity_per_consultant},
    )
    return settings
