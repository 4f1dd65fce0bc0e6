"""Celery tasks for registration automation: one thin task runs any step's durable job.

The chain lives in the database: each step's job (anmei.jobs) schedules the next one in the
transaction that records the step's success, so a lost message, a killed worker or a failed
publish costs one sweep interval, never the rest of the chain. Attempts and countdowns are the
job row's (from the tenant's run-time settings); the steps' database keys make a repeat harmless.
"""

from __future__ import annotations

from celery_config import app


@app.task(name="workers.registration.start")
def start(job_id: int) -> int | None:
    """Start a new customer's registration run (the hand-off job of `accounts.services.registration_hand_off`)."""
    from anmei.automation.services import automation_run_start_job
    from anmei.jobs.services import job_lease

    with job_lease(job_id) as job:
        if job is None:
            return None
        run = automation_run_start_job(customer_id=job.payload["customer_id"])
        return run.id if run else None


@app.task(name="workers.registration.step")
def step(job_id: int) -> str | None:
    """Run one attempt of one step of a registration run."""
    from anmei.automation.services import automation_job_failed, automation_step_run
    from anmei.jobs.services import job_lease

    with job_lease(job_id, on_failed=automation_job_failed) as job:
        if job is None:
            return None
        return automation_step_run(job=job)


@app.task(name="workers.registration.noop")
def noop(index: int, marker: str = "") -> int:
    """A do-nothing task: bench/registration.py times a chain of these as the queueing baseline.

    The last link pushes to a Redis list `marker` so the bench sees the chain end without a
    result backend.
    """
    if marker:
        from anmei.common.redis import get_redis

        get_redis().rpush(marker, index)
        get_redis().expire(marker, 300)
    return index


@app.task(name="workers.registration.conversation_welcome")
def conversation_welcome(job_id: int) -> dict | None:
    """Welcome a returning customer's new conversation (the job of `conversation_welcome_schedule`)."""
    from anmei.automation.services import automation_conversation_welcome
    from anmei.jobs.services import job_lease

    with job_lease(job_id) as job:
        if job is None:
            return None
        return automation_conversation_welcome(conversation_id=job.payload["conversation_id"])
