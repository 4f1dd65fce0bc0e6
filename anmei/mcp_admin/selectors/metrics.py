"""Call monitoring: per tool calls, errors, error rate, p50/p95 latency, overall success."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.utils import timezone

from anmei.accounts.models import User
from anmei.common.permissions import is_operator
from anmei.mcp_admin.models import MCPCallLog


def _percentile(sorted_values: list[int], pct: float) -> int | None:
    """Nearest-rank percentile; None for no data."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))  # ceil without floats drifting
    return sorted_values[int(rank) - 1]


def call_metrics(*, actor: User, hours: int = 24, tenant_id: int | None = None) -> dict[str, Any]:
    """Aggregate the call log of the last `hours` hours for the actor's tenant (operators: all or one).

    Computed in Python from (tool, success, duration) triples so it is identical on SQLite and
    PostgreSQL; the (tool_name, success, created_at) index keeps the scan to the window.
    """
    since = timezone.now() - timedelta(hours=hours)
    qs = MCPCallLog.objects.filter(created_at__gte=since)
    if is_operator(actor):
        if tenant_id:
            qs = qs.filter(tenant_id=tenant_id)
    else:
        qs = qs.filter(tenant_id=actor.tenant_id)
    per_tool: dict[str, dict[str, Any]] = defaultdict(lambda: {"durations": [], "errors": 0, "codes": defaultdict(int)})
    for tool_name, success, duration_ms, error_code in qs.values_list(
        "tool_name", "success", "duration_ms", "error_code"
    ):
        bucket = per_tool[tool_name]
        bucket["durations"].append(duration_ms)
        if not success:
            bucket["errors"] += 1
            bucket["codes"][error_code or "error"] += 1
    tools = []
    total = errors = 0
    for tool_name in sorted(per_tool):
        bucket = per_tool[tool_name]
        durations = sorted(bucket["durations"])
        calls = len(durations)
        total += calls
        errors += bucket["errors"]
        tools.append(
            {
                "tool_name": tool_name,
                "calls": calls,
                "errors": bucket["errors"],
                "error_rate": round(bucket["errors"] / calls, 4),
                "p50_duration_ms": _percentile(durations, 50),
                "p95_duration_ms": _percentile(durations, 95),
                "errors_by_code": dict(sorted(bucket["codes"].items())),
            }
        )
    return {
        "window_hours": hours,
        "since": since.isoformat(),
        "total_calls": total,
        "total_errors": errors,
        "success_rate": round((total - errors) / total, 4) if total else None,
        "tools": tools,
    }
