"""How a task that runs a durable job is declared: once, here.

Every unit of background work is a `jobs.Job` row (docs/architecture.md, "Queues and schedules");
its task takes only the row's id. `job_task` owns the plumbing every such task repeated: take an
attempt with `job_lease` (a duplicated or re-sent message, a finished or failed job, or a live
lease elsewhere do nothing), hand the body the leased job, and let the lease record the outcome —
done, `JobRetry` after its countdown, `JobFailed` (or retries exhausted) calling `on_failed`.
The body stays what a task should be: read the payload, call one service, map its answer.

Every task of the project is declared on the one Celery app (`celery_config.app`), through this
decorator or `app.task` for the few that are not jobs (beat sweeps, diagnostics, suggestions).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from celery_config import app


def job_task(
    name: str, *, on_failed: Callable[[Any, str], None] | None = None, **options: Any
) -> Callable[[Callable[[Any], Any]], Any]:
    """Declare `body(job)` as the Celery task `name` that runs one attempt of a durable job.

    `on_failed(job, error)` runs when the job fails for good (its own short transaction, see
    `job_lease`). Celery `options` (time limits, …) pass through.
    """

    def declare(body: Callable[[Any], Any]):
        @app.task(name=name, **options)
        @functools.wraps(body)
        def task(job_id: int):
            from anmei.jobs.services import job_lease

            with job_lease(job_id, on_failed=on_failed) as job:
                if job is None:  # done already, failed, or another worker holds it
                    return None
                return body(job)

        return task

    return declare
