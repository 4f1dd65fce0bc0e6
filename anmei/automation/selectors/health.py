"""Agent, MCP and system status for the automation dashboard, and the dashboard that joins them."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db.models import Avg, Count, Q, Sum
from django.utils import timezone

from anmei.ai.breaker import breaker_state
from anmei.ai.mcp_client import MCPCallError, MCPEndpoint, default_url, mcp_session, run_async, session_tools
from anmei.ai.models import AgentCall
from anmei.ai.selectors import agent_config_get
from anmei.automation.selectors.runs import automation_metrics, automation_recent_errors
from anmei.common.health import health_report
from anmei.mcp_admin.models import MCPCallLog


def agent_status(*, tenant_id: int, hours: int = 24) -> dict[str, Any]:
    """The tenant's agent (Dify or other): configuration, breaker, call outcomes and token usage."""
    config = agent_config_get(tenant_id=tenant_id)
    since = timezone.now() - timedelta(hours=hours)
    calls = AgentCall.objects.filter(tenant_id=tenant_id, provider=config.provider, created_at__gte=since)
    stats = calls.aggregate(
        total=Count("id"),
        failures=Count("id", filter=Q(success=False)),
        average_ms=Avg("duration_ms", filter=Q(success=True)),
        prompt=Sum("prompt_tokens"),
        completion=Sum("completion_tokens"),
        tokens=Sum("total_tokens"),
        cost=Sum("cost"),
    )
    last_error = calls.filter(success=False).order_by("-created_at").values("error", "created_at").first()
    state = breaker_state(tenant_id=tenant_id, provider=config.provider)
    if not config.enabled:
        status = "disabled"
    elif state["state"] == "open":
        status = "circuit_open"
    elif stats["total"] and stats["failures"] / stats["total"] > 0.5:
        status = "degraded"
    else:
        status = "ok"
    return {
        "status": status,
        "provider": config.provider,
        "enabled": config.enabled,
        "base_url": config.base_url,
        "app_id": config.app_id,
        "model": config.model,
        "timeout_seconds": config.timeout_seconds,
        "breaker": state,
        "window_hours": hours,
        "calls": stats["total"],
        "failures": stats["failures"],
        "error_rate": round(stats["failures"] / stats["total"], 4) if stats["total"] else None,
        "average_latency_ms": round(stats["average_ms"], 1) if stats["average_ms"] is not None else None,
        "tokens": {
            "prompt": stats["prompt"] or 0,
            "completion": stats["completion"] or 0,
            "total": stats["tokens"] or 0,
            "cost": float(stats["cost"]) if stats["cost"] is not None else 0.0,
        },
        "last_error": {"error": last_error["error"], "timestamp": last_error["created_at"].isoformat()}
        if last_error
        else None,
    }


def mcp_status(*, tenant_id: int, timeout: float = 2.0, cache_seconds: int = 30) -> dict[str, Any]:
    """Probe our MCP sidecar the way the gateway uses it (list the tools its key may call).

    The probe opens an MCP session (a network round trip, up to `timeout` when the sidecar is down),
    so its answer is cached per tenant for `cache_seconds`; the call statistics are always fresh.
    """
    config = agent_config_get(tenant_id=tenant_id)
    if not config.mcp_group_key_encrypted:
        detail = "no MCP key yet: created on the first welcome"
        return {"url": default_url(), "status": "unconfigured", "detail": detail}
    cache_key = f"automation:mcp_status:{tenant_id}"
    probe = cache.get(cache_key)
    if probe is None:
        probe = _mcp_probe(group_key=config.mcp_group_key, timeout=timeout)
        cache.set(cache_key, probe, cache_seconds)
    return {**probe, **_mcp_call_stats(tenant_id)}


def _mcp_probe(*, group_key: str, timeout: float) -> dict[str, Any]:
    url = default_url()

    async def probe():
        endpoint = MCPEndpoint(url=url, group_key=group_key, caller_app_id="anmei-dashboard")
        async with mcp_session(endpoint, timeout) as session:
            return await session_tools(session)

    result: dict[str, Any] = {"url": url, "checked_at": timezone.now().isoformat()}
    started = time.perf_counter()
    try:
        tools = run_async(probe(), timeout)
        result.update(status="up", tools=sorted(t["name"] for t in tools))
    except MCPCallError as exc:
        result.update(status="down", error=str(exc)[:300])
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def _mcp_call_stats(tenant_id: int) -> dict[str, Any]:
    """Calls and errors of the last 24 h from the sidecar's call log."""
    since = timezone.now() - timedelta(hours=24)
    stats = MCPCallLog.objects.filter(tenant_id=tenant_id, created_at__gte=since).aggregate(
        calls=Count("id"), errors=Count("id", filter=Q(success=False)), average_ms=Avg("duration_ms")
    )
    return {
        "calls_24h": stats["calls"],
        "errors_24h": stats["errors"],
        "average_latency_ms_24h": round(stats["average_ms"], 1) if stats["average_ms"] is not None else None,
    }


def system_health(*, cache_seconds: int = 10) -> dict[str, Any]:
    """Platform health (database, Redis, broker, workers), cached briefly.

    The worker ping waits up to HEALTH_CHECK_TIMEOUT_SECONDS when no worker answers; a dashboard
    refreshed by several admins should not pay that on every load.
    """
    cached = cache.get("automation:system_health")
    if cached is not None:
        return cached
    healthy, checks = health_report()
    result = {"status": "ok" if healthy else "degraded", "checks": checks, "checked_at": timezone.now().isoformat()}
    cache.set("automation:system_health", result, cache_seconds)
    return result


def automation_dashboard(*, tenant_id: int, days: int = 14) -> dict[str, Any]:
    """The dashboard document of API.md (its top-level keys are fixed)."""
    return {
        "automation_metrics": automation_metrics(tenant_id=tenant_id, days=days),
        "mcp_server_status": mcp_status(tenant_id=tenant_id),
        "dify_agent_status": agent_status(tenant_id=tenant_id),
        "recent_errors": automation_recent_errors(tenant_id=tenant_id),
        "system_health": system_health(),
    }
