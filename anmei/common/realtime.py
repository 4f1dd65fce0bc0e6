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


def sessions_group(tenant_id: int | None) -> str:
    """Every open socket of the tenant's users (closed together when the tenant stops being active)."""
    return f"t{tenant_id if tenant_id is not None else 'platform'}.sessions"


def sockets_close_user(tenant_id: int | None, user_id: int, *, token_id: int | None = None) -> None:
    """Close the user's open sockets with 4401 (only those opened through `token_id` when given).

    Call after the commit that revoked the access (logout, password change, deactivation, role
    change): the consumer re-checks on every command, this makes an idle socket stop receiving too.
    A failure is logged, not raised: the revocation itself has committed.
    """
    _close(user_group(tenant_id, user_id), {"type": "session.revoke", "token_id": token_id})


def sockets_close_tenant(tenant_id: int) -> None:
    """Close every open socket of the tenant's users with 4401 (after a suspension commits)."""
    _close(sessions_group(tenant_id), {"type": "session.revoke", "token_id": None})


def _close(group: str, message: dict[str, Any]) -> None:
    try:
        async_to_sync(get_channel_layer().group_send)(group, message)
    except Exception:
        logger.exception("socket close failed", extra={"group": group})


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
