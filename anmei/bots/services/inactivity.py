"""End conversations left idle past the tenant's inactivity timeout (beat task body).

The timeout is a bot-gateway setting (GatewaySettings), so the sweep lives here and asks the
conversations app to do the ending: conversations stays below bots in the import layers.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from anmei.bots.selectors import gateway_settings_get
from anmei.conversations.services import conversation_end_idle, conversation_tenants_with_open


def conversation_end_inactive(*, now: datetime | None = None) -> int:
    """End open conversations idle longer than their tenant's inactivity timeout; return how many."""
    ended = 0
    for tenant_id in conversation_tenants_with_open():
        timeout = timedelta(minutes=gateway_settings_get(tenant_id=tenant_id).inactivity_timeout_minutes)
        ended += conversation_end_idle(tenant_id=tenant_id, idle_for=timeout, now=now)
    return ended
