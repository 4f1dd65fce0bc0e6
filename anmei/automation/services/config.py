"""A tenant's automation settings (the steps it runs and their timing), and the alert source name."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from anmei.automation.models import AutomationSettings

logger = logging.getLogger("anmei.automation")


ALERT_SOURCE = "registration_automation"
STEP_TASK = "workers.registration.step"


def automation_settings_get_or_create(*, tenant_id: int) -> AutomationSettings:
    """Return the tenant's run-time settings, creating them from the settings.py defaults once."""
    found = AutomationSettings.objects.filter(tenant_id=tenant_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return AutomationSettings.objects.create(
                tenant_id=tenant_id,
                enabled=settings.AUTOMATION_ENABLED_DEFAULT,
                retry_countdowns=list(settings.AUTOMATION_RETRY_COUNTDOWNS),
                max_retries=settings.AUTOMATION_MAX_RETRIES,
            )
    except IntegrityError:
        return AutomationSettings.objects.get(tenant_id=tenant_id)


def automation_settings_update(*, tenant_id: int, **fields) -> AutomationSettings:
    config = automation_settings_get_or_create(tenant_id=tenant_id)
    for name, value in fields.items():
        setattr(config, name, value)
    config.full_clean(exclude=["tenant"])
    config.save()
    return config
