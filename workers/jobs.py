"""Celery tasks for the durable-job record (anmei.jobs)."""

from __future__ import annotations

from celery_config import app


@app.task(name="workers.jobs.sweep")
def sweep() -> int:
    """Beat: re-send jobs whose message was lost, free the leases of dead workers."""
    from anmei.jobs.services import jobs_sweep

    return jobs_sweep()


@app.task(name="workers.jobs.alert_stuck")
def alert_stuck() -> int:
    """Beat: an admin alert for each pipeline with jobs stuck past the threshold."""
    from anmei.notifications.services import jobs_stuck_alert

    return jobs_stuck_alert()
