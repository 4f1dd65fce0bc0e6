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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone

from anmei.accounts.models import User
from anmei.ai.gateway import generate_welcome as agent_welcome
from anmei.audit.services import audit_changes, audit_record, audit_snapshot
from anmei.automation.models import JOB_KIND, STEPS, AutomationRun, AutomationSettings, AutomationStep
from anmei.automation.selectors import automation_run_stuck_ids
from anmei.automation.steps import STEP_FUNCTIONS
from anmei.common import realtime
from anmei.common.errors import ApplicationError, ConflictError
from anmei.common.metrics import REGISTRATION_SECONDS
from anmei.common.outbound import OutboundError
from anmei.conversations.models import Conversation, Message
from anmei.conversations.services import message_create, message_event
from anmei.conversations.services.handoffs import message_deliver_schedule
from anmei.jobs.models import Job
from anmei.jobs.services import JobFailed, JobRetry, job_schedule
from anmei.notifications.backends import NotificationBackendError
from anmei.notifications.services import admin_alert_raise

logger = logging.getLogger("anmei.automation")

ALERT_SOURCE = "registration_automation"
STEP_TASK = "workers.registration.step"


def automation_settings_get_or_create(*, tenant_id: int) -> AutomationSettings:
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
    """Change the tenant's automation settings and audit the change in the same transaction."""
    automation_settings_get_or_create(tenant_id=tenant_id)
    with transaction.atomic():
        config = AutomationSettings.objects.select_for_update().get(tenant_id=tenant_id)
        before = audit_snapshot(config, fields)
        for name, value in fields.items():
            setattr(config, name, value)
        config.full_clean(exclude=["tenant"])
        config.save()
        audit_record(
            tenant_id=tenant_id,
            action="update",
            object_type="automation_settings",
            object_id=config.pk,
            changes=audit_changes(before, audit_snapshot(config, fields)),
        )
    return config


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


def automation_conversation_welcome(*, conversation_id: int) -> dict[str, Any]:
    """Welcome a customer's later conversation (one they opened after an earlier one ended).

    The tenant's automation settings decide: automation on and `welcome_returning` set. The agent
    writes it (the template when the agent fails), as for a registration. Idempotent: the message's
    external id is per conversation, and a conversation that is no longer waiting for its first
    answer (claimed, ended) is left alone.
    """
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return {"skipped": "conversation gone"}
    config = automation_settings_get_or_create(tenant_id=conversation.tenant_id)
    if not (config.enabled and config.welcome_returning):
        return {"skipped": "welcome for returning customers off"}
    if conversation.status == Conversation.Status.ENDED:
        return {"skipped": "conversation ended"}
    external_id = f"welcome:conversation:{conversation.id}"
    if Message.objects.filter(tenant_id=conversation.tenant_id, external_id=external_id).exists():
        return {"skipped": "already welcomed"}
    outcome = agent_welcome(
        tenant_id=conversation.tenant_id, customer_id=conversation.customer_id, conversation_id=conversation.id
    )
    text, source = (outcome.text, "agent") if outcome.text else (config.welcome_template, "template")
    with transaction.atomic():
        message, created = message_create(
            conversation=conversation,
            sender_type=Message.SenderType.BOT,
            type=Message.Type.TEXT,
            content=text,
            payload={"kind": "welcome", "source": source},
            external_id=external_id,
        )
        if created and conversation.bot_instance_id:
            message_deliver_schedule(tenant_id=conversation.tenant_id, message_id=message.id)
    if created:
        realtime.broadcast_to_user(conversation.tenant_id, conversation.customer_id, message_event(message))
    return {"message_id": message.id, "created": created, "source": source}
