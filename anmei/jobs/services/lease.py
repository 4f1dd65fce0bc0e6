"""Lease a job for one attempt and record how the attempt ended (done, retry, failed)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from anmei.common.metrics import task_outcome
from anmei.jobs.models import Job
from anmei.jobs.services.schedule import EARLY_SLACK, JobFailed, JobRetry, job_publish

logger = logging.getLogger("anmei.jobs")


def _job_begin(job_id: int) -> Job | None:
    """Take the job for one attempt, or return None when it is not ours to run now."""
    job = Job.objects.filter(pk=job_id).first()
    if job is None or job.state in (Job.State.DONE, Job.State.FAILED):
        return None
    now = timezone.now()
    takeable = Q(state=Job.State.PENDING, next_attempt_at__lte=now + EARLY_SLACK) | Q(
        state=Job.State.RUNNING, lease_until__lt=now
    )
    lease_until = now + timedelta(seconds=job.lease_seconds)
    taken = (
        Job.objects.filter(takeable, pk=job_id)
        .filter(attempts=job.attempts)
        .update(state=Job.State.RUNNING, attempts=F("attempts") + 1, lease_until=lease_until, updated_at=now)
    )
    if not taken:
        return None
    job.state, job.attempts, job.lease_until = Job.State.RUNNING, job.attempts + 1, lease_until
    return job


def _job_succeed(job: Job, duration_ms: float) -> None:
    now = timezone.now()
    # A slow attempt whose lease the sweep gave away still did the work: record it as done.
    Job.objects.filter(pk=job.pk, state__in=[Job.State.RUNNING, Job.State.PENDING]).update(
        state=Job.State.DONE, lease_until=None, finished_at=now, updated_at=now, last_error=""
    )
    logger.info(
        "job done",
        extra={
            "tenant_id": job.tenant_id,
            "job_id": job.id,
            "kind": job.kind,
            "attempt": job.attempts,
            "duration_ms": round(duration_ms, 1),
        },
    )


def _job_fail(job: Job, error: str, on_failed: Callable[[Job, str], None] | None) -> None:
    """Fail the attempt's job and tell its owner, in one transaction: both or neither."""
    now = timezone.now()
    with transaction.atomic():
        updated = Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts).update(
            state=Job.State.FAILED, lease_until=None, finished_at=now, updated_at=now, last_error=error[:2000]
        )
        if updated and on_failed is not None:
            on_failed(job, error)
    if updated:
        task_outcome(job.task, "failed")
    logger.warning(
        "job failed",
        extra={"tenant_id": job.tenant_id, "job_id": job.id, "kind": job.kind, "attempt": job.attempts, "error": error},
    )


def _countdown(job: Job, requested: float | None) -> float:
    if requested is not None:
        return requested
    countdowns = job.retry_countdowns or settings.JOBS_DEFAULT_RETRY_COUNTDOWNS
    return float(countdowns[min(job.attempts, len(countdowns)) - 1])


def _job_retry(job: Job, error: str, countdown: float | None, on_failed: Callable[[Job, str], None] | None) -> None:
    if job.is_last_attempt:
        _job_fail(job, f"attempts exhausted: {error}", on_failed)
        return
    delay = _countdown(job, countdown)
    now = timezone.now()
    updated = Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts).update(
        state=Job.State.PENDING,
        next_attempt_at=now + timedelta(seconds=delay),
        lease_until=None,
        last_error=error[:2000],
        updated_at=now,
    )
    logger.warning(
        "job retry",
        extra={
            "tenant_id": job.tenant_id,
            "job_id": job.id,
            "kind": job.kind,
            "attempt": job.attempts,
            "retry_in_s": delay,
            "error": error,
        },
    )
    if updated:
        task_outcome(job.task, "retry")
        job_publish(job=job, countdown=delay)


def job_lease_renew(*, job: Job) -> bool:
    """Extend a running attempt's lease by its length from now; False once the attempt lost it.

    A conditional UPDATE on (state, attempts): an attempt whose lease the sweep gave away never
    takes it back.
    """
    now = timezone.now()
    renewed = Job.objects.filter(pk=job.pk, state=Job.State.RUNNING, attempts=job.attempts).update(
        lease_until=now + timedelta(seconds=job.lease_seconds), updated_at=now
    )
    if renewed:
        job.lease_until = now + timedelta(seconds=job.lease_seconds)
    return bool(renewed)


@contextmanager
def job_lease_heartbeat(job: Job, *, every_seconds: float | None = None) -> Iterator[None]:
    """Renew the job's lease from a thread while the block runs (a long model run, say).

    The lease can then be short — a kill -9 frees the job within one lease — however long the work
    is. The thread renews every third of the lease (or `every_seconds`) with its own database
    connection, closed when it stops; a failed renewal (database away) is tried again next beat.
    """
    from django.db import connection

    stop = threading.Event()
    interval = every_seconds or max(job.lease_seconds / 3, 0.2)

    def beat() -> None:
        try:
            while not stop.wait(interval):
                try:
                    if not job_lease_renew(job=job):
                        return
                except Exception:  # noqa: BLE001 - the next beat tries again; the lease covers two misses
                    logger.warning("job lease renewal failed", extra={"job_id": job.id, "kind": job.kind})
        finally:
            connection.close()

    thread = threading.Thread(target=beat, name=f"lease-{job.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


@contextmanager
def job_lease(job_id: int, *, on_failed: Callable[[Job, str], None] | None = None) -> Iterator[Job | None]:
    """Run one attempt of a job: yields the leased Job, or None when there is nothing to do.

    Normal exit → done; `JobRetry` or any other exception → pending after the next countdown
    (failed once attempts are exhausted); `JobFailed` → failed at once. `on_failed(job, error)` runs
    in the transaction that marks the job failed. If recording the outcome itself fails (database
    down), the exception propagates and the row stays leased: the sweep runs it again once the
    lease expires.
    """
    job = _job_begin(job_id)
    if job is None:
        yield None
        return
    if job.attempts > job.max_attempts:  # every earlier attempt died with its worker
        _job_fail(job, "attempts exhausted: worker lost", on_failed)
        yield None
        return
    started = time.perf_counter()
    try:
        yield job
    except JobFailed as exc:
        _job_fail(job, str(exc), on_failed)
    except JobRetry as exc:
        _job_retry(job, str(exc) or "retry requested", exc.countdown, on_failed)
    except Exception as exc:  # noqa: BLE001 - any failure of the work is retried, then failed
        logger.exception("job attempt raised", extra={"job_id": job.id, "kind": job.kind})
        _job_retry(job, f"{type(exc).__name__}: {exc}"[:500], None, on_failed)
    else:
        _job_succeed(job, (time.perf_counter() - started) * 1000)
