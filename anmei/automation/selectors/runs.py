"""Run figures for the automation dashboard: success rates, step timings, stuck runs, recent errors."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone

from anmei.ai.models import AgentCall
from anmei.automation.models import JOB_KIND, STEPS, AutomationRun, AutomationStep
from anmei.jobs.models import Job

PERCENTILE_SAMPLE = 10_000


def _percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return round(sorted_values[rank - 1], 1)


def automation_run_stuck_ids(*, tenant_id: int, run_ids: list[int] | None = None, since=None) -> set[int]:
    """Running runs of the tenant that nothing moves: none of their current generation's step jobs
    waits for its time or is held by a live worker, and they started over JOBS_STUCK_AFTER_SECONDS ago.

    That covers a step whose message and re-sends keep getting lost, a worker that died holding the
    lease for longer than the threshold, and a run whose job never existed (started before jobs).
    """
    now = timezone.now()
    threshold = timedelta(seconds=settings.JOBS_STUCK_AFTER_SECONDS)
    runs = AutomationRun.objects.filter(
        tenant_id=tenant_id, status=AutomationRun.Status.RUNNING, started_at__lt=now - threshold
    )
    if run_ids is not None:
        runs = runs.filter(pk__in=run_ids)
    if since is not None:
        runs = runs.filter(started_at__gte=since)
    candidates = dict(runs.values_list("id", "generation"))
    if not candidates:
        return set()
    moving = Job.objects.filter(tenant_id=tenant_id, kind=JOB_KIND, payload__run_id__in=list(candidates)).filter(
        Q(state=Job.State.PENDING, next_attempt_at__gte=now - threshold)
        | Q(state=Job.State.RUNNING, lease_until__gte=now - threshold)
    )
    alive = {
        run_id
        for run_id, generation in moving.values_list("payload__run_id", "payload__generation")
        if candidates.get(run_id) == generation
    }
    return set(candidates) - alive


def automation_metrics(*, tenant_id: int, days: int = 14) -> dict[str, Any]:
    """Success rate, totals and end-to-end timings over `days`, plus a per-day trend.

    The success rate is succeeded / (succeeded + failed + stuck): a run nothing moves any more
    (see `automation_run_stuck_ids`) counts as not successful; runs still on their way have no
    outcome yet. Timings are of succeeded runs (registration commit → record_metrics).
    `stuck_jobs` is the tenant's jobs due for longer than the stuck threshold, per pipeline.
    """
    from anmei.jobs.selectors import jobs_stuck_counts

    since = timezone.now() - timedelta(days=days)
    runs = AutomationRun.objects.filter(tenant_id=tenant_id, started_at__gte=since)
    counts = runs.aggregate(
        total=Count("id"),
        succeeded=Count("id", filter=Q(status=AutomationRun.Status.SUCCEEDED)),
        failed=Count("id", filter=Q(status=AutomationRun.Status.FAILED)),
        running=Count("id", filter=Q(status=AutomationRun.Status.RUNNING)),
        template=Count("id", filter=Q(welcome_source="template")),
        agent=Count("id", filter=Q(welcome_source="agent")),
    )
    stuck = len(automation_run_stuck_ids(tenant_id=tenant_id, since=since))
    finished = counts["succeeded"] + counts["failed"] + stuck
    durations = sorted(
        runs.filter(status=AutomationRun.Status.SUCCEEDED, end_to_end_ms__isnull=False)
        .order_by("-started_at")
        .values_list("end_to_end_ms", flat=True)[:PERCENTILE_SAMPLE]
    )
    from anmei.stats.services.rollup import tenant_zone

    zone = tenant_zone(tenant_id)  # days of the trend are the tenant's local days
    daily = (
        runs.annotate(day=TruncDate("started_at", tzinfo=zone))
        .values("day")
        .annotate(
            total=Count("id"),
            succeeded=Count("id", filter=Q(status=AutomationRun.Status.SUCCEEDED)),
            failed=Count("id", filter=Q(status=AutomationRun.Status.FAILED)),
            average_ms=Avg("end_to_end_ms", filter=Q(status=AutomationRun.Status.SUCCEEDED)),
        )
        .order_by("day")
    )
    by_day = {row["day"]: row for row in daily}
    today = timezone.now().astimezone(zone).date()
    trends = []
    for offset in range(days - 1, -1, -1):
        day = today - timedelta(days=offset)
        row = by_day.get(day) or {"total": 0, "succeeded": 0, "failed": 0, "average_ms": None}
        done = row["succeeded"] + row["failed"]
        trends.append(
            {
                "date": day.isoformat(),
                "total": row["total"],
                "succeeded": row["succeeded"],
                "failed": row["failed"],
                "success_rate": round(row["succeeded"] / done, 4) if done else None,
                "average_response_time_ms": round(row["average_ms"], 1) if row["average_ms"] is not None else None,
            }
        )
    step_rows = (
        AutomationStep.objects.filter(tenant_id=tenant_id, started_at__gte=since)
        .values("step")
        .annotate(attempts=Count("id"), failures=Count("id", filter=Q(success=False)), average_ms=Avg("duration_ms"))
    )
    steps = {s: {"attempts": 0, "failures": 0, "average_ms": None} for s in STEPS}
    for row in step_rows:
        steps[row["step"]] = {
            "attempts": row["attempts"],
            "failures": row["failures"],
            "average_ms": round(row["average_ms"] or 0, 1),
        }
    return {
        "success_rate": round(counts["succeeded"] / finished, 4) if finished else None,
        "total_automations": counts["total"],
        "succeeded": counts["succeeded"],
        "failed": counts["failed"],
        "running": counts["running"],
        "stuck": stuck,
        "stuck_jobs": jobs_stuck_counts(tenant_id=tenant_id),
        "average_response_time_ms": round(sum(durations) / len(durations), 1) if durations else None,
        "p95_response_time_ms": _percentile(durations, 0.95),
        "welcome_sources": {"agent": counts["agent"], "template": counts["template"]},
        "steps": steps,
        "window_days": days,
        "daily_trends": trends,
    }


def automation_recent_errors(*, tenant_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """The latest failed step attempts and agent failures, newest first.

    `timestamp` is the instant (UTC ISO); `local_time` the same on the tenant's clock, as the
    dashboard shows it (the statistics' time zone, docs/metrics.md).
    """
    from anmei.stats.services.rollup import tenant_zone

    zone = tenant_zone(tenant_id)
    errors = [
        {
            "kind": "step",
            "run_id": s.run_id,
            "customer_id": s.run.customer_id,
            "step": s.step,
            "attempt": s.attempt,
            "error": s.error,
            "retry_in_seconds": s.countdown,
            "timestamp": s.finished_at.isoformat(),
            "local_time": s.finished_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        }
        for s in AutomationStep.objects.filter(tenant_id=tenant_id, success=False)
        .select_related("run")
        .order_by("-finished_at")[:limit]
    ]
    errors += [
        {
            "kind": "agent",
            "provider": c.provider,
            "purpose": c.purpose,
            "customer_id": c.customer_id,
            "error": c.error,
            "timestamp": c.created_at.isoformat(),
            "local_time": c.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
        }
        for c in AgentCall.objects.filter(tenant_id=tenant_id, success=False).order_by("-created_at")[:limit]
    ]
    errors.sort(key=lambda e: e["timestamp"], reverse=True)
    return errors[:limit]
