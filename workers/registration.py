"""Celery tasks for registration automation: one thin task per step, chained per customer.

Each task loads the run by id, calls the service, and on a failure re-queues itself with the
countdown the service read from the tenant's run-time settings. `acks_late` +
`reject_on_worker_lost` (celery_config) bring a task back if its worker dies; the steps'
database keys make that repeat harmless.
"""

from __future__ import annotations

from celery import chain

from anmei.automation.models import STEPS
from anmei.automation.services import automation_step_execute
from celery_config import app


def _execute(task, step: str, run_id: int, generation: int) -> str:
    outcome = automation_step_execute(run_id=run_id, generation=generation, step=step, attempt=task.request.retries + 1)
    if outcome.status == "retry":
        raise task.retry(countdown=outcome.countdown, max_retries=None)
    if outcome.status in ("failed", "skipped"):
        task.request.chain = None  # the run failed or is not ours any more: stop the chain here
    return outcome.status


@app.task(bind=True, name="workers.registration.create_default_conversation", max_retries=None)
def create_default_conversation(self, run_id: int, generation: int = 0) -> str:
    return _execute(self, "create_default_conversation", run_id, generation)


@app.task(bind=True, name="workers.registration.generate_welcome", max_retries=None)
def generate_welcome(self, run_id: int, generation: int = 0) -> str:
    return _execute(self, "generate_welcome", run_id, generation)


@app.task(bind=True, name="workers.registration.deliver_welcome", max_retries=None)
def deliver_welcome(self, run_id: int, generation: int = 0) -> str:
    return _execute(self, "deliver_welcome", run_id, generation)


@app.task(bind=True, name="workers.registration.notify_consultants", max_retries=None)
def notify_consultants(self, run_id: int, generation: int = 0) -> str:
    return _execute(self, "notify_consultants", run_id, generation)


@app.task(bind=True, name="workers.registration.record_metrics", max_retries=None)
def record_metrics(self, run_id: int, generation: int = 0) -> str:
    return _execute(self, "record_metrics", run_id, generation)


TASKS = {
    "create_default_conversation": create_default_conversation,
    "generate_welcome": generate_welcome,
    "deliver_welcome": deliver_welcome,
    "notify_consultants": notify_consultants,
    "record_metrics": record_metrics,
}


def run_chain(run_id: int, generation: int):
    """The chain of the five steps for one run (immutable signatures: each takes only ids)."""
    return chain(*(TASKS[step].si(run_id, generation) for step in STEPS))


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
