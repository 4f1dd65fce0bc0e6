"""One step attempt: run it, record its AutomationStep row, and end the run done or failed."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from anmei.automation.models import STEPS, AutomationRun, AutomationStep
from anmei.automation.services.config import ALERT_SOURCE, automation_settings_get_or_create
from anmei.automation.steps import STEP_FUNCTIONS
from anmei.common.errors import ApplicationError
from anmei.common.metrics import REGISTRATION_SECONDS
from anmei.common.outbound import OutboundError
from anmei.notifications.backends import NotificationBackendError
from anmei.notifications.services import admin_alert_raise

logger = logging.getLogger("anmei.automation")


@dataclass(frozen=True)
class StepOutcome:
    """`status` is ok, skipped, retry (after `countdown` s) or failed (retries exhausted)."""

    status: str
    countdown: float | None = None
    error: str = ""


def automation_step_execute(
    *,
    run_id: int,
    generation: int,
    step: str,
    attempt: int,
    on_success: Callable[[AutomationRun], None] | None = None,
) -> StepOutcome:
    """Run one attempt of one step and record it.

    A run that is not running this generation any more (finished, failed, or retried from admin
    with a newer generation) is skipped, so stale or duplicated tasks do nothing. `on_success(run)`
    runs in the transaction that records the success (the chain schedules its next link there).
    A database error while recording a failure propagates: the job stays leased and is retried.
    """
    run = AutomationRun.objects.select_related("customer").filter(pk=run_id).first()
    if run is None or run.generation != generation or run.status != AutomationRun.Status.RUNNING:
        return StepOutcome("skipped")
    config = automation_settings_get_or_create(tenant_id=run.tenant_id)
    started_at = timezone.now()
    started = time.perf_counter()
    # The last step finishes the run: its own record commits in the same transaction, so a run
    # seen finished always shows every step (the other steps call out over HTTP and stay outside).
    finishing = step == STEPS[-1]
    try:
        with transaction.atomic() if finishing else contextlib.nullcontext():
            if finishing:
                details = {"finished": automation_run_finish(run=run)}
            else:
                details = STEP_FUNCTIONS[step](run=run, config=config) or {}
            duration_ms = (time.perf_counter() - started) * 1000
            with transaction.atomic():
                _step_record(run, step, attempt, True, duration_ms, started_at, details=details)
                if on_success is not None:
                    on_success(run)
    except (OperationalError, InterfaceError):
        raise  # the database is gone: the failure cannot be recorded either; the job's lease expires, the sweep retries
    except Exception as exc:  # noqa: BLE001 - any failure of a step is retried, then alerted
        error, detail = step_error(exc), f"{type(exc).__name__}: {exc}"[:500]
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
                "detail": detail,
                "retry_in": countdown,
            },
        )
        if countdown is not None:
            return StepOutcome("retry", countdown=countdown, error=error)
        automation_run_fail(run=run, step=step, error=error, attempts=attempt)
        return StepOutcome("failed", error=error)
    return StepOutcome("ok")


STEP_ERROR = "STEP_ERROR: the step failed (the details are in the server logs)"


def step_error(exc: Exception) -> str:
    """What a failed step shows the tenant (dashboard, admin, alerts): a stable code and a fixed text.

    Only our own errors say more: a domain error's code and message, an outbound call's category,
    a notification backend's reason (its category or HTTP status). Exception classes, messages of
    other exceptions and anything upstream stay in the log (`detail`).
    """
    if isinstance(exc, ApplicationError):
        return f"{exc.code}: {exc.message}"[:500]
    if isinstance(exc, OutboundError):
        return f"STEP_UNREACHABLE: {exc.category}"
    if isinstance(exc, NotificationBackendError):
        return f"STEP_NOTIFY_FAILED: {exc}"[:500]
    return STEP_ERROR


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
