"""Writes for registration automation: starting, advancing, failing and retrying a run.

A run is one customer's chain of five steps (steps.py). Each step attempt is executed through
`automation_step_execute`, which records an AutomationStep row and decides between success, a
retry after the countdown from the tenant's run-time settings, and failure (run failed +
AdminAlert). Every write that must happen once is guarded by a database constraint, so a
redelivered, retried or duplicated task changes nothing the second time.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from anmei.accounts.models import User
from anmei.automation.models import STEPS, AutomationRun, AutomationSettings, AutomationStep
from anmei.common.metrics import REGISTRATION_SECONDS
from anmei.notifications.services import admin_alert_raise

logger = logging.getLogger("anmei.automation")

ALERT_SOURCE = "registration_automation"


def automation_settings_get(*, tenant_id: int) -> AutomationSettings:
    """Return the tenant's run-time settings, creating them from the settings.py defaults once."""
    found = AutomationSettings.objects.filter(tenant_id=tenant_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return AutomationSettings.objects.create(
                tenant_id=tenant_id,
                enabled=settings.AUTOMATION_ENABLED_DEFAULT,
                retry_countdowns=list(settings.AUTOMATION_RETRY_COUNTDOWNS),
                max_retries=settings.AUTOMATION_MAX_RETRIES,
            )
    except IntegrityError:
        return AutomationSettings.objects.get(tenant_id=tenant_id)


def automation_settings_update(*, tenant_id: int, **fields) -> AutomationSettings:
    config = automation_settings_get(tenant_id=tenant_id)
    for name, value in fields.items():
        setattr(config, name, value)
    config.full_clean(exclude=["tenant"])
    config.save()
    return config


def automation_run_start(*, customer: User) -> AutomationRun | None:
    """Create the customer's run and enqueue its chain after commit; None when automation is off.

    The one-run-per-customer constraint makes a duplicated hook a no-op.
    """
    if customer.role != User.Role.CUSTOMER or not customer.tenant_id:
        return None
    config = automation_settings_get(tenant_id=customer.tenant_id)
    if not config.enabled:
        logger.info("automation off: no run", extra={"tenant_id": customer.tenant_id, "customer_id": customer.id})
        return None
    try:
        with transaction.atomic():
            run = AutomationRun.objects.create(tenant_id=customer.tenant_id, customer=customer)
            transaction.on_commit(lambda: automation_run_enqueue(run_id=run.id, generation=run.generation))
    except IntegrityError:
        return AutomationRun.objects.get(customer=customer)
    logger.info(
        "automation run started", extra={"tenant_id": run.tenant_id, "run_id": run.id, "customer_id": customer.id}
    )
    return run


def automation_run_enqueue(*, run_id: int, generation: int) -> None:
    """Send the chain to the broker; if the broker refuses, fail the run so admins see and retry it."""
    from workers.registration import run_chain

    try:
        run_chain(run_id, generation).apply_async()
    except Exception as exc:  # noqa: BLE001 - the registration already succeeded; record, alert, move on
        logger.exception("automation enqueue failed", extra={"run_id": run_id})
        run = AutomationRun.objects.filter(pk=run_id).first()
        if run is not None:
            automation_run_fail(run=run, step="enqueue", error=f"enqueue failed: {type(exc).__name__}", attempts=1)


@dataclass(frozen=True)
class StepOutcome:
    """`status` is ok, skipped, retry (after `countdown` s) or failed (retries exhausted)."""

    status: str
    countdown: float | None = None
    error: str = ""


def automation_step_execute(*, run_id: int, generation: int, step: str, attempt: int) -> StepOutcome:
    """Run one attempt of one step and record it.

    A run that is not running this generation any more (finished, failed, or retried from admin
    with a newer generation) is skipped, so stale or duplicated tasks do nothing.
    """
    from anmei.automation.steps import STEP_FUNCTIONS

    run = AutomationRun.objects.select_related("customer").filter(pk=run_id).first()
    if run is None or run.generation != generation or run.status != AutomationRun.Status.RUNNING:
        return StepOutcome("skipped")
    config = automation_settings_get(tenant_id=run.tenant_id)
    started_at = timezone.now()
    started = time.perf_counter()
    # The last step finishes the run: its own record commits in the same transaction, so a run
    # seen finished always shows every step (the other steps call out over HTTP and stay outside).
    finishing = step == STEPS[-1]
    try:
        with transaction.atomic() if finishing else contextlib.nullcontext():
            details = STEP_FUNCTIONS[step](run=run, config=config) or {}
            duration_ms = (time.perf_counter() - started) * 1000
            _step_record(run, step, attempt, True, duration_ms, started_at, details=details)
    except Exception as exc:  # noqa: BLE001 - any failure of a step is retried, then alerted
        error = f"{type(exc).__name__}: {exc}"[:500]
        duration_ms = (time.perf_counter() - started) * 1000
        retries_done = attempt - 1
        countdown = config.countdown_for(attempt) if retries_done < config.max_retries else None
        _step_record(run, step, attempt, False, duration_ms, started_at, error=error, countdown=countdown)
        logger.warning(
            "automation step failed",
            extra={
                "tenant_id": run.tenant_id,
                "run_id": run.id,
                "step": step,
                "attempt": attempt,
                "error": error,
                "retry_in": countdown,
            },
        )
        if countdown is not None:
            return StepOutcome("retry", countdown=countdown, error=error)
        automation_run_fail(run=run, step=step, error=error, attempts=attempt)
        return StepOutcome("failed", error=error)
    return StepOutcome("ok")


def _step_record(
    run: AutomationRun,
    step: str,
    attempt: int,
    success: bool,
    duration_ms: float,
    started_at,
    *,
    error: str = "",
    countdown: float | None = None,
    details: dict | None = None,
) -> None:
    """Write the attempt's row in one statement; a redelivered attempt (same number) overwrites its own row.

    INSERT … ON CONFLICT (run, generation, step, attempt) DO UPDATE: the unique constraint decides.
    """
    fields = {
        "success": success,
        "duration_ms": round(duration_ms, 2),
        "error": error,
        "countdown": countdown,
        "details": details or {},
        "started_at": started_at,
        "finished_at": timezone.now(),
    }
    AutomationStep.objects.bulk_create(
        [
            AutomationStep(
                tenant_id=run.tenant_id, run=run, generation=run.generation, step=step, attempt=attempt, **fields
            )
        ],
        update_conflicts=True,
        unique_fields=["run", "generation", "step", "attempt"],
        update_fields=list(fields),
    )


def automation_run_finish(*, run: AutomationRun) -> bool:
    """Mark the run succeeded with its end-to-end time; only the first finisher writes."""
    finished_at = timezone.now()
    elapsed_ms = (finished_at - run.started_at).total_seconds() * 1000
    updated = AutomationRun.objects.filter(
        pk=run.pk, generation=run.generation, status=AutomationRun.Status.RUNNING
    ).update(status=AutomationRun.Status.SUCCEEDED, finished_at=finished_at, end_to_end_ms=round(elapsed_ms, 1))
    if updated:
        REGISTRATION_SECONDS.observe(elapsed_ms / 1000)
        logger.info(
            "automation run succeeded",
            extra={
                "tenant_id": run.tenant_id,
                "run_id": run.id,
                "end_to_end_ms": round(elapsed_ms, 1),
                "welcome_source": run.welcome_source,
            },
        )
    return bool(updated)


def automation_run_fail(*, run: AutomationRun, step: str, error: str, attempts: int) -> None:
    """Mark the run failed and raise one AdminAlert for this run and generation."""
    finished_at = timezone.now()
    updated = AutomationRun.objects.filter(
        pk=run.pk, generation=run.generation, status=AutomationRun.Status.RUNNING
    ).update(
        status=AutomationRun.Status.FAILED,
        failed_step=step,
        error=error[:500],
        finished_at=finished_at,
        end_to_end_ms=round((finished_at - run.started_at).total_seconds() * 1000, 1),
    )
    if not updated:
        return
    admin_alert_raise(
        tenant_id=run.tenant_id,
        source=ALERT_SOURCE,
        code="automation_run_failed",
        message=f"Registration automation for customer {run.customer_id} failed at {step} "
        f"after {attempts} attempt(s): {error}",
        dedupe_key=f"automation:{run.id}:{run.generation}",
        details={
            "run_id": run.id,
            "customer_id": run.customer_id,
            "step": step,
            "attempts": attempts,
            "error": error[:500],
            "generation": run.generation,
        },
    )


def automation_run_retry(*, run: AutomationRun) -> AutomationRun:
    """Start a failed run again (a new generation); finished steps are skipped by their own guards."""
    from anmei.common.errors import ConflictError

    with transaction.atomic():
        locked = AutomationRun.objects.select_for_update().get(pk=run.pk)
        if locked.status != AutomationRun.Status.FAILED:
            raise ConflictError("run_not_failed", "only a failed run can be retried", details={"status": locked.status})
        locked.generation += 1
        locked.status = AutomationRun.Status.RUNNING
        locked.failed_step = ""
        locked.error = ""
        locked.finished_at = None
        locked.end_to_end_ms = None
        locked.save()
        generation = locked.generation
        transaction.on_commit(lambda: automation_run_enqueue(run_id=locked.id, generation=generation))
    logger.info(
        "automation run retried", extra={"tenant_id": locked.tenant_id, "run_id": locked.id, "generation": generation}
    )
    return locked
