"""Reads for the registration-automation dashboard, always for one tenant.

The package: `runs` (run figures, stuck runs, recent errors) and `health` (agent, MCP and system
status, and the dashboard that joins them). Callers import from `anmei.automation.selectors`.
"""

from anmei.automation.selectors.health import (
    _mcp_call_stats,
    _mcp_probe,
    agent_status,
    automation_dashboard,
    mcp_status,
    system_health,
)
from anmei.automation.selectors.runs import (
    PERCENTILE_SAMPLE,
    _percentile,
    automation_metrics,
    automation_recent_errors,
    automation_run_stuck_ids,
)

__all__ = [
    "PERCENTILE_SAMPLE",
    "_mcp_call_stats",
    "_mcp_probe",
    "_percentile",
    "agent_status",
    "automation_dashboard",
    "automation_metrics",
    "automation_recent_errors",
    "automation_run_stuck_ids",
    "mcp_status",
    "system_health",
]
