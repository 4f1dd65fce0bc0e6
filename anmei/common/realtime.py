"""Push events to WebSocket groups. Group names always carry the tenant, so nothing crosses tenants.

Services call these explicitly after their transaction commits (no signals).
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

logger = logging.getLogger("anmei.realtime")


def user_group(tenant_id: int | None, user_id: int) -> str:
    return f"t{tenant_id if tenant_id is not None else 'platform'}.u{user_id}"


def console_group(tenant_id: int) -> str:
    """Every connected consultant and admin of the tenant."""
    return f"t{tenant_id}.console"


def admins_group(tenant_id: int) -> str:
    return f"t{tenant_id}.admins"


async def agroup_send(group: str, event: dict[str, Any]) -> None:
    layer = get_channel_layer()
    await layer.group_send(group, {"type": "event.forward", "event": event})


def group_send(group: str, event: dict[str, Any]) -> None:
    """Send one event to a group; a failure is logged and re-raised so that a task can retry."""
    try:
        async_to_sync(agroup_send)(group, event)
    except Exception:
        logger.exception("realtime send failed", extra={"group": group, "event_type": event.get("type")})
        raise


def broadcast_to_user(tenant_id: int | None, user_id: int, event: dict[str, Any]) -> None:
    group_send(user_group(tenant_id, user_id), event)


def broadcast_to_console(tenant_id: int, event: dict[str, Any]) -> None:
    group_send(console_group(tenant_id), event)


def broadcast_to_admins(tenant_id: int, event: dict[str, Any]) -> None:
    group_send(admins_group(tenant_id), event)
