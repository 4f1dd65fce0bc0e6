"""Schedule, lease, finish and sweep durable jobs (models.Job).

The life of a job: `job_schedule` writes it (pending, due now or after a delay) inside the caller's
transaction and publishes its id to Celery on commit. The task takes the job with `job_lease`: a
conditional UPDATE (pending and due, or running with an expired lease → running, attempts + 1,
leased) decides which worker runs an attempt, so a duplicated or re-sent message does nothing.
The attempt ends done, pending again after the next countdown, or failed; each of those writes is
its own short statement after the work, never a lock held across it. `jobs_sweep` (beat) re-sends
what is due but was not taken within a grace period — the message was lost — and frees the leases
of workers that died.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from anmei.common.metrics import task_outcome
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


def _job_id_of(raw: bytes | str) -> int | None:
    """The job id in a broker message's task id (`job-<id>-…`), or None for other messages."""
    try:
        task_id = json.loads(raw)["headers"]["id"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(task_id, str) or not task_id.startswith(MESSAGE_PREFIX):
        return None
    head = task_id[len(MESSAGE_PREFIX) :].split("-", 1)[0]
    return int(head) if head.isdigit() else None


def broker_job_messages() -> tuple[set[int], set[int]]:
    """(job ids with a message in a queue, job ids with a message a worker holds) on the broker.

    Reads the Redis transport's own structures: each queue's list and kombu's `unacked` hash
    (reserved messages, countdowns waiting in a worker, and tasks running with late ack). Raises
    when the broker cannot be read: then nothing is provably lost.
    """
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=2, socket_timeout=5)
    queues = {queue.name for queue in app.conf.task_queues or ()} | {settings.CELERY_DEFAULT_QUEUE}
    queued: set[int] = set()
    for name in queues:
        for raw in client.lrange(name, 0, -1):
            if (job_id := _job_id_of(raw)) is not None:
                queued.add(job_id)
    held: set[int] = set()
    for _tag, value in client.hscan_iter("unacked", count=500):
        try:
            raw = json.loads(value)[0]
        except (ValueError, IndexError, TypeError):
            continue
        if (job_id := _job_id_of(json.dumps(raw) if isinstance(raw, dict) else raw)) is not None:
            held.add(job_id)
    return queued, held


def jobs_sweep(*, batch: int | None = None) -> int:
    """Re-send due jobs whose message was lost and free expired leases; return how many were sent.

    A pending job due for JOBS_RESEND_GRACE_SECONDS without a worker taking it is re-sent only if
    its message is provably lost: in no queue of the broker and held by no worker (a broker restart
    without persistence, a failed publish). One still queued is only late (a burst) and is left
    alone; one a worker holds is re-sent after JOBS_RESEND_HELD_GRACE_SECONDS (that worker is stuck
    or died holding a countdown). A running job whose lease expired (worker killed, database down
    while recording) goes back to pending and is re-sent. A re-sent job's due time moves to now, so
    a backlog is looked at once per grace period, not every sweep. Rows are claimed with SKIP
    LOCKED, so two sweeps never send the same row. `Job.resent` counts every re-send, `Job.lost`
    those whose message was gone (both on /metrics).
    """
    now = timezone.now()
    grace = timedelta(seconds=settings.JOBS_RESEND_GRACE_SECONDS)
    held_grace = timedelta(seconds=settings.JOBS_RESEND_HELD_GRACE_SECONDS)
    with transaction.atomic():
        candidates = list(
            Job.objects.select_for_update(skip_locked=True)
            .filter(
                Q(state=Job.State.PENDING, next_attempt_at__lte=now - grace)
                | Q(state=Job.State.RUNNING, lease_until__lt=now)
            )
            .order_by("next_attempt_at")[: batch or settings.JOBS_SWEEP_BATCH]
        )
        pending = [job for job in candidates if job.state == Job.State.PENDING]
        if pending:
            try:
                queued, held = broker_job_messages()
            except Exception as exc:  # noqa: BLE001 - the broker is away: nothing can be proved lost now
                logger.warning("jobs sweep: broker unreadable", extra={"error": type(exc).__name__})
                queued, held, pending = set(), set(), []
                candidates = [job for job in candidates if job.state == Job.State.RUNNING]
        else:
            queued, held = set(), set()
        lost = [job for job in pending if job.pk not in queued and job.pk not in held]
        stale_held = [job for job in pending if job.pk in held and job.next_attempt_at <= now - held_grace]
        expired = [job for job in candidates if job.state == Job.State.RUNNING]
        due = [*lost, *stale_held, *expired]
        if lost:
            Job.objects.filter(pk__in=[job.pk for job in lost]).update(lost=F("lost") + 1)
        if due:
            Job.objects.filter(pk__in=[job.pk for job in due]).update(
                state=Job.State.PENDING, lease_until=None, next_attempt_at=now, resent=F("resent") + 1, updated_at=now
            )
    sent = sum(job_publish(job=job) for job in due)
    if due:
        logger.warning(
            "jobs re-sent",
            extra={
                "count": len(due),
                "published": sent,
                "lost": len(lost),
                "held": len(stale_held),
                "lease_expired": len(expired),
                "late_in_queue": len(pending) - len(lost) - len(stale_held),
                "job_ids": [j.pk for j in due][:20],
            },
        )
    return sent
