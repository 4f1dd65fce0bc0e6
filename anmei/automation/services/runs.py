"""Start a run, schedule and run its steps one job each, and retry a failed run."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from anmei.accounts.models import User
from anmei.automation.models import JOB_KIND, STEPS, AutomationRun, AutomationSettings, AutomationStep
from anmei.automation.selectors import automation_run_stuck_ids
from anmei.automation.services.config import STEP_TASK, automation_settings_get_or_create
from anmei.automation.services.steps import STEP_ERROR, automation_run_fail, automation_step_execute
from anmei.common.errors import ConflictError
from anmei.jobs.models import Job
from anmei.jobs.services import JobFailed, JobRetry, job_schedule

logger = logging.getLogger("anmei.automation")


def automation_run_start_job(*, customer_id: int) -> AutomationRun | None:
    """The registration hand-off job: start the run of the customer it names (gone: nothing to do)."""
    customer = User.objects.filter(pk=customer_id).first()
    return automation_run_start(customer=customer) if customer is not None else None


def automation_run_start(*, customer: User) -> AutomationRun | None:
    """Create the customer's run and its first step's job; None when automation is off.

    Registration hands this over by task name (`accounts.services.registration_hand_off`, a job
    written in the transaction that creates the customer: accounts and bots sit below automation);
    the run and its first job commit together here. The one-run-per-customer constraint makes a
    second call a no-op.
    """
    if customer.role != User.Role.CUSTOMER or not customer.tenant_id:
        return None
    config = automation_settings_get_or_create(tenant_id=customer.tenant_id)
    if not config.enabled:
        logger.info("automation off: no run", extra={"tenant_id": customer.tenant_id, "customer_id": customer.id})
        return None
    try:
        with transaction.atomic():
            run = AutomationRun.objects.create(tenant_id=customer.tenant_id, customer=customer)
            automation_step_schedule(run=run, step=STEPS[0], config=config)
    except IntegrityError:
        return AutomationRun.objects.get(customer=customer)
    logger.info(
        "automation run started", extra={"tenant_id": run.tenant_id, "run_id": run.id, "customer_id": customer.id}
    )
    return run


def automation_step_schedule(*, run: AutomationRun, step: str, config: AutomationSettings | None = None) -> Job:
    """The durable job of one step of this run's generation (idempotent: one job per step and generation).

    The step decides its retries from the tenant's run-time settings at each attempt;
    the job row carries the countdown of each retry, so a lost message costs one sweep interval.
    """
    config = config or automation_settings_get_or_create(tenant_id=run.tenant_id)
    return job_schedule(
        kind=JOB_KIND,
        key=f"run:{run.id}:{run.generation}:{step}",
        task=STEP_TASK,
        tenant_id=run.tenant_id,
        # customer_id lets lower layers see a welcome still on its way (the away message waits for it)
        payload={"run_id": run.id, "generation": run.generation, "step": step, "customer_id": run.customer_id},
        # the step's own retries, plus room for attempts lost with their worker (those leave no row)
        max_attempts=config.max_retries + 1 + settings.AUTOMATION_WORKER_LOSS_ALLOWANCE,
        retry_countdowns=[float(x) for x in config.retry_countdowns],
        lease_seconds=settings.AUTOMATION_STEP_LEASE_SECONDS,
    )


def automation_step_run(*, job: Job) -> str:
    """One leased attempt of a step's job: execute it, and on success schedule the next step.

    The step's success row and the next step's job commit together, so a chain link can only be
    missing if its step did not succeed. A retry raises JobRetry with the settings' countdown (the
    job row carries it, so a lost message costs one sweep interval); a run that failed or is not
    this generation's any more ends the job.
    """
    run_id, generation, step = job.payload["run_id"], job.payload["generation"], job.payload["step"]
    # The attempt number counts recorded step attempts, not job leases: an attempt cut short by a killed
    # worker left no row, so its redo is the same attempt and does not use up a retry.
    recorded = AutomationStep.objects.filter(run_id=run_id, generation=generation, step=step, success=False).count()
    outcome = automation_step_execute(
        run_id=run_id,
        generation=generation,
        step=step,
        attempt=recorded + 1,
        on_success=lambda run: _schedule_next(run, step),
    )
    if outcome.status == "retry":
        raise JobRetry(outcome.error, countdown=outcome.countdown)
    if outcome.status == "failed":
        raise JobFailed("STEP_FAILED", outcome.error)
    return outcome.status


def _schedule_next(run: AutomationRun, step: str) -> None:
    index = STEPS.index(step)
    if index + 1 < len(STEPS):
        automation_step_schedule(run=run, step=STEPS[index + 1])


def automation_job_failed(job: Job, error: str) -> None:
    """`on_failed` of a step's job: its attempts ran out without the step recording it (workers lost)."""
    run = AutomationRun.objects.filter(pk=job.payload["run_id"], generation=job.payload["generation"]).first()
    if run is not None:
        # the job's own text may name exception classes: the tenant gets a code, the log has the rest
        shown = "STEP_WORKER_LOST: the workers running this step were lost" if "worker lost" in error else STEP_ERROR
        automation_run_fail(run=run, step=job.payload["step"], error=shown, attempts=job.attempts)


def automation_run_retry(*, run: AutomationRun) -> AutomationRun:
    """Start a failed or stuck run again (a new generation); finished steps are skipped by their own guards."""
    with transaction.atomic():
        locked = AutomationRun.objects.select_for_update().get(pk=run.pk)
        stuck = locked.status == AutomationRun.Status.RUNNING and locked.id in automation_run_stuck_ids(
            tenant_id=locked.tenant_id, run_ids=[locked.id]
        )
        if locked.status != AutomationRun.Status.FAILED and not stuck:
            raise ConflictError(
                "run_not_failed", "only a failed or stuck run can be retried", details={"status": locked.status}
            )
        locked.generation += 1
        locked.status = AutomationRun.Status.RUNNING
        locked.failed_step = ""
        locked.error = ""
        locked.finished_at = None
        locked.end_to_end_ms = None
        locked.save()
        generation = locked.generation
        automation_step_schedule(run=locked, step=STEPS[0])
    logger.info(
        "automation run retried",
        extra={"tenant_id": locked.tenant_id, "run_id": locked.id, "generation": generation, "was_stuck": stuck},
    )
    return locked
