"""End conversations left idle past the tenant's inactivity timeout (beat task body).

The timeout is a conversation setting (`ConversationSettings`), read fresh on every sweep.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from anmei.conversations.selectors import conversation_settings_get
from anmei.conversations.services.lifecycle import conversation_end_idle, conversation_tenants_with_open


def conversation_end_inactive(*, now: datetime | None = None) -> int:
    """End open conversations idle longer than their tenant's inactivity timeout; return how many."""
    ended = 0
    for tenant_id in conversation_tenants_with_open():
        timeout = timedelta(minutes=conversation_settings_get(tenant_id=tenant_id).inactivity_timeout_minutes)
        ended += conversation_end_idle(tenant_id=tenant_id, idle_for=timeout, now=now)
    return ended
