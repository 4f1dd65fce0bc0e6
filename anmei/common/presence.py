"""Who is online: one entry per open console WebSocket, kept alive by heartbeats.

The console consumer writes it; conversation routing and the automation read it, so it sits in
common, below both.

A tenant-scoped Redis sorted set `t:<tenant>:presence` holds `<role>|<user_id>|<channel>` members
scored by their expiry time. A user with several tabs has several members but counts once; a
connection whose heartbeats stop (crashed browser, killed server) drops out after the TTL.
"""

from __future__ import annotations

import time

from django.conf import settings

from anmei.common.redis import get_redis, tenant_key


def _key(tenant_id: int) -> str:
    return tenant_key(tenant_id, "presence")


def presence_touch(*, tenant_id: int, user_id: int, role: str, channel_name: str) -> None:
    """Mark a connection alive until now + TTL (called on connect and on every heartbeat)."""
    member = f"{role}|{user_id}|{channel_name}"
    ttl = settings.PRESENCE_TTL_SECONDS
    client = get_redis()
    pipe = client.pipeline()
    pipe.zadd(_key(tenant_id), {member: time.time() + ttl})
    pipe.expire(_key(tenant_id), ttl * 2)
    pipe.execute()


def presence_leave(*, tenant_id: int, user_id: int, role: str, channel_name: str) -> None:
    get_redis().zrem(_key(tenant_id), f"{role}|{user_id}|{channel_name}")


def online_user_ids(*, tenant_id: int, roles: tuple[str, ...] = ("consultant",)) -> set[int]:
    """Ids of users of `roles` with at least one live connection (tabs counted once)."""
    client = get_redis()
    now = time.time()
    pipe = client.pipeline()
    pipe.zremrangebyscore(_key(tenant_id), "-inf", now)
    pipe.zrangebyscore(_key(tenant_id), now, "+inf")
    _, members = pipe.execute()
    online: set[int] = set()
    for member in members:
        role, user_id, _channel = member.split("|", 2)
        if role in roles:
            online.add(int(user_id))
    return online
