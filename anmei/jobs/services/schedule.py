"""Write a job (pending) in the caller's transaction and publish its id to Celery on commit."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from anmei.jobs.models import Job
from celery_config import app

logger = logging.getLogger("anmei.jobs")

# A message published with a countdown may be taken a moment before the row's due time.
EARLY_SLACK = timedelta(seconds=2)
# Every job message's Celery task id starts with this and the job id: `job-<id>-<random>`.
MESSAGE_PREFIX = "job-"


class JobRetry(Exception):  # noqa: N818 - a control-flow signal, named for what it asks
    """Raised inside `job_lease`: this attempt failed, try again after `countdown` (or the job's next)."""

    def __init__(self, message: str = "", countdown: float | None = None):
        super().__init__(message)
        self.countdown = countdown


class JobFailed(Exception):  # noqa: N818
    """Raised inside `job_lease`: the work can never succeed (bad input); fail now, no retries."""

    def __init__(self, code: str, message: str = ""):
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code


def job_schedule(
    *,
    kind: str,
    key: str,
    task: str,
    tenant_id: int | None = None,
    payload: dict[str, Any] | None = None,
    queue: str | None = None,
    delay_seconds: float = 0,
    max_attempts: int | None = None,
    retry_countdowns: list[float] | None = None,
    lease_seconds: int | None = None,
) -> Job:
    """Record a unit of work and publish it after the surrounding transaction commits.

    Idempotent by (kind, key): a second call returns the existing row untouched, whatever its state.
    Call it inside the transaction that makes the change the work follows from.
    """
    now = timezone.now()
    try:
        with transaction.atomic():
            job = Job.objects.create(
                tenant_id=tenant_id,
                kind=kind,
                key=key,
                task=task,
                queue=queue or "",
                payload=payload or {},
                next_attempt_at=now + timedelta(seconds=delay_seconds),
                max_attempts=max_attempts or settings.JOBS_DEFAULT_MAX_ATTEMPTS,
                retry_countdowns=list(
                    settings.JOBS_DEFAULT_RETRY_COUNTDOWNS if retry_countdowns is None else retry_countdowns
                ),
                lease_seconds=lease_seconds or settings.JOBS_DEFAULT_LEASE_SECONDS,
            )
    except IntegrityError:
        return Job.objects.get(kind=kind, key=key)
    transaction.on_commit(lambda: job_publish(job=job, countdown=delay_seconds))
    logger.info(
        "job scheduled",
        extra={"tenant_id": tenant_id, "job_id": job.id, "kind": kind, "key": key, "delay_s": delay_seconds},
    )
    return job


def job_publish(*, job: Job, countdown: float = 0) -> bool:
    """Send the job's id to Celery; a broker error is logged, the sweep re-sends the row later."""
    try:
        app.send_task(
            job.task,
            args=[job.id],
            queue=job.queue or None,
            countdown=countdown or None,
            task_id=f"{MESSAGE_PREFIX}{job.id}-{uuid.uuid4().hex[:12]}",  # the sweep finds it in the broker
        )
    except Exception as exc:  # noqa: BLE001 - the row is the record; losing the message costs one sweep
        logger.warning(
            "job publish failed",
            extra={"tenant_id": job.tenant_id, "job_id": job.id, "kind": job.kind, "error": type(exc).__name__},
        )
        return False
    return True


def job_reschedule(*, job_id: int, delay_seconds: float = 0) -> bool:
    """Run a job again from its first attempt (manual retry); False while an attempt holds a live lease."""
    now = timezone.now()
    with transaction.atomic():
        updated = (
            Job.objects.filter(pk=job_id)
            .exclude(state=Job.State.RUNNING, lease_until__gte=now)
            .update(
                state=Job.State.PENDING,
                attempts=0,
                next_attempt_at=now + timedelta(seconds=delay_seconds),
                lease_until=None,
                last_error="",
                finished_at=None,
                updated_at=now,
            )
        )
        if updated:
            job = Job.objects.get(pk=job_id)
            transaction.on_commit(lambda: job_publish(job=job, countdown=delay_seconds))
    logger.info("job rescheduled", extra={"job_id": job_id, "rescheduled": bool(updated)})
    return bool(updated)
