"""Re-send what is due but was never taken (the message was lost) and free dead workers' leases."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from anmei.jobs.models import Job
from anmei.jobs.services.schedule import MESSAGE_PREFIX, job_publish
from celery_config import app

logger = logging.getLogger("anmei.jobs")


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
