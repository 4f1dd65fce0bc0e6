from __future__ import annotations

from functools import lru_cache

import redis
from django.conf import settings


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2, decode_responses=True)


def get_redis() -> redis.Redis:
    """Return the shared Redis client for REDIS_URL (connection-pooled, thread-safe)."""
    return _client(settings.REDIS_URL)


def tenant_key(tenant_id: int | None, *parts: object) -> str:
    """Build a Redis key scoped by tenant: `t:<tenant_id>:<part>:<part>…`."""
    return ":".join(["t", str(tenant_id if tenant_id is not None else "platform"), *map(str, parts)])
