"""Celery tasks: conversations (thin: load by id, call a service, retry/alert)."""

from __future__ import annotations

from celery_config import app
from workers.base import job_task


@app.task(name="workers.conversations.end_inactive")
def end_inactive() -> int:
    """Beat: end open conversations idle past their tenant's inactivity timeout."""
    from anmei.conversations.services import conversation_end_inactive

    return conversation_end_inactive()


@job_task("workers.conversations.assign")
def assign(job) -> list[int]:
    """One assignment round for a tenant (durable job `conversations.assign`)."""
    from anmei.conversations.services.assignment import conversations_assign

    return conversations_assign(tenant_id=job.payload["tenant_id"])


@app.task(name="workers.conversations.assign_sweep")
def assign_sweep() -> dict[int, list[int]]:
    """Beat: a round for every tenant in an automatic mode with waiting work."""
    from anmei.conversations.services.assignment import conversations_assign_sweep

    return conversations_assign_sweep()
