"""A circuit breaker per tenant and provider, its state in Redis so every worker shares it.

After `threshold` consecutive failures the breaker opens for `cooldown` seconds: callers skip the
agent and use the fallback at once instead of waiting for a timeout on every registration. While
it is open, one call every AI_BREAKER_PROBE_SECONDS is let through (half-open): success closes the
breaker, failure keeps it open. So a recovered agent is used again within seconds, not after the
whole cool-down. Keys are tenant-scoped: `t:<tenant>:aibreaker:<provider>:{failures,open,probe}`.
"""

from __future__ import annotations

from django.conf import settings

from anmei.common.redis import get_redis, tenant_key


def _keys(tenant_id: int, provider: str) -> tuple[str, str]:
    return tenant_key(tenant_id, "aibreaker", provider, "failures"), tenant_key(
        tenant_id, "aibreaker", provider, "open"
    )


def _probe_key(tenant_id: int, provider: str) -> str:
    return tenant_key(tenant_id, "aibreaker", provider, "probe")


def _probe_ms() -> int:
    return max(int(settings.AI_BREAKER_PROBE_SECONDS * 1000), 1)


def breaker_allows(*, tenant_id: int, provider: str) -> bool:
    """True unless the breaker is open; when open, True for one probe call per probe interval.

    The open key expires by itself after the cool-down; the probe key (SET NX with the interval)
    lets exactly one caller of every interval try the agent.
    """
    _, open_key = _keys(tenant_id, provider)
    client = get_redis()
    if not client.exists(open_key):
        return True
    return bool(client.set(_probe_key(tenant_id, provider), "1", nx=True, px=_probe_ms()))


def breaker_record_success(*, tenant_id: int, provider: str) -> None:
    failures_key, open_key = _keys(tenant_id, provider)
    get_redis().delete(failures_key, open_key)


def breaker_record_failure(*, tenant_id: int, provider: str, threshold: int, cooldown_seconds: int) -> bool:
    """Count a failure; return True when this failure opened the breaker."""
    failures_key, open_key = _keys(tenant_id, provider)
    client = get_redis()
    pipe = client.pipeline()
    pipe.incr(failures_key)
    pipe.expire(failures_key, max(cooldown_seconds * 10, 600))
    failures, _ = pipe.execute()
    if failures >= max(threshold, 1):
        client.set(open_key, str(failures), ex=max(cooldown_seconds, 1))
        client.set(_probe_key(tenant_id, provider), "1", px=_probe_ms())  # the first probe after one interval
        client.delete(failures_key)
        return True
    return False


def breaker_state(*, tenant_id: int, provider: str) -> dict:
    failures_key, open_key = _keys(tenant_id, provider)
    client = get_redis()
    ttl = client.ttl(open_key)
    return {
        "state": "open" if ttl and ttl > 0 else "closed",
        "consecutive_failures": int(client.get(failures_key) or 0),
        "reopens_in_seconds": ttl if ttl and ttl > 0 else 0,
    }
