"""Work per Celery queue, as an autoscaler must see it: waiting + reserved + due jobs, each unit once.

`LLEN <queue>` alone under-counts: a worker's reserved tasks (prefetched, or running under late acks)
sit in kombu's `unacked` hash, and a priority message sits in a sub-list (`<queue>\\x06\\x16<n>`), so
a saturated fleet reads zero and is scaled in while busy. The durable job rows add what the broker
lost (a Redis restart, a killed publish): a due or running job that no message stands for is work
too. A countdown retry (its ETA or its row's due time in the future) is not work yet.

Each message is read once (bounded by QUEUE_WORK_SCAN_LIMIT per list: beyond it, messages are
counted without being matched to jobs). Read-only: nothing here takes a lock.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db.models import Min, Q
from django.utils import timezone

from anmei.jobs.models import Job
from celery_config import app

PRIORITY_SEP = "\x06\x16"  # kombu's Redis transport: sub-list of priority n is f"{queue}{sep}{n}"
PRIORITY_STEPS = (0, 3, 6, 9)
UNACKED_KEY = "unacked"
QUEUE_WORK_SCAN_LIMIT = 5000


@dataclass
class QueueWork:
    waiting: int = 0  # messages in the queue's lists, due now
    reserved: int = 0  # messages a worker holds (prefetched or running), due now
    unsent_jobs: int = 0  # due or running jobs that no message stands for
    oldest_due_seconds: float = 0.0  # how long the longest-waiting due job has been due
    messages: set[tuple[str, int]] = field(default_factory=set, repr=False)  # (task, job id) seen

    @property
    def total(self) -> int:
        return self.waiting + self.reserved + self.unsent_jobs


def queue_names() -> tuple[str, ...]:
    return (settings.CELERY_DEFAULT_QUEUE, settings.CELERY_ASR_QUEUE, settings.CELERY_REPLIES_QUEUE)


def queue_of_task(task: str, queue: str = "") -> str:
    """The queue a job's message goes to: its own `queue`, else the task's route."""
    return queue or app.amqp.router.route({}, task)["queue"].name


def _decode(raw: bytes) -> tuple[str, int | None, datetime | None, str]:
    """(task, first argument if an int, ETA, routing key) of one kombu Redis message."""
    message = json.loads(raw)
    headers = message.get("headers") or {}
    properties = message.get("properties") or {}
    task = headers.get("task", "")
    eta = headers.get("eta")
    first = None
    try:
        body = message.get("body", "")
        if properties.get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        if args and isinstance(args[0], int):
            first = args[0]
    except (ValueError, TypeError, IndexError, KeyError):
        pass
    routing_key = (properties.get("delivery_info") or {}).get("routing_key", "")
    return task, first, (datetime.fromisoformat(eta) if eta else None), routing_key


def _is_due(eta: datetime | None, now: datetime) -> bool:
    if eta is None:
        return True
    if timezone.is_naive(eta):
        eta = timezone.make_aware(eta, timezone.utc)
    return eta <= now


def queue_work_counts(client) -> dict[str, QueueWork]:
    """Per queue: waiting, reserved and unsent-job counts (`client`: a redis client on the broker)."""
    now = timezone.now()
    work = {name: QueueWork() for name in queue_names()}
    for name, figures in work.items():
        for step in PRIORITY_STEPS:
            key = name if step == 0 else f"{name}{PRIORITY_SEP}{step}"
            length = client.llen(key)
            scanned = client.lrange(key, 0, QUEUE_WORK_SCAN_LIMIT - 1) if length else []
            for raw in scanned:
                task, first, eta, _ = _decode(raw)
                if _is_due(eta, now):
                    figures.waiting += 1
                if first is not None:
                    figures.messages.add((task, first))
            figures.waiting += max(0, length - len(scanned))
    for raw in client.hvals(UNACKED_KEY):
        try:
            payload, _exchange, routing_key = json.loads(raw)
            task, first, eta, _ = _decode(json.dumps(payload))
        except (ValueError, TypeError):
            continue
        figures = work.get(routing_key)
        if figures is None:
            continue
        if _is_due(eta, now):
            figures.reserved += 1
        if first is not None:
            figures.messages.add((task, first))
    due_or_running = Job.objects.filter(
        Q(state=Job.State.PENDING, next_attempt_at__lte=now) | Q(state=Job.State.RUNNING)
    )
    for job_id, task, queue in due_or_running.values_list("id", "task", "queue").iterator():
        figures = work.get(queue_of_task(task, queue))
        if figures is None:
            continue
        if (task, job_id) not in figures.messages:
            figures.unsent_jobs += 1
    oldest = (
        Job.objects.filter(state=Job.State.PENDING, next_attempt_at__lte=now)
        .values("task", "queue")
        .annotate(first=Min("next_attempt_at"))
    )
    for row in oldest:
        figures = work.get(queue_of_task(row["task"], row["queue"]))
        if figures is not None:
            figures.oldest_due_seconds = max(figures.oldest_due_seconds, (now - row["first"]).total_seconds())
    return work
