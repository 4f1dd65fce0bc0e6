"""Celery tasks on the `asr` queue (thin: take the durable job, call the service, map the outcome).

The model is loaded once per worker process (anmei.asr.backends caches it) and reused by every task.
"""

from __future__ import annotations

from django.conf import settings

from celery_config import app


@app.task(
    name="workers.asr.transcribe",
    soft_time_limit=settings.ASR_TIME_LIMIT_SECONDS,
    time_limit=settings.ASR_TIME_LIMIT_SECONDS + 30,
)
def transcribe(job_id: int) -> None:
    """Transcribe one voice message: transient errors retry on the job's countdowns, others fail at once."""
    from anmei.asr.backends import AsrError
    from anmei.asr.services import asr_task_adopt, asr_task_fail, asr_task_process
    from anmei.jobs.services import JobFailed, JobRetry, job_lease, job_lease_heartbeat

    def adopt(job) -> None:  # a web voice message hands over only the job; its task is recorded here
        if job.payload.get("message_id"):
            asr_task_adopt(
                asr_task_id=job.payload["asr_task_id"],
                message_id=job.payload["message_id"],
                tenant_id=job.tenant_id,
                job_id=job.id,
            )

    def on_failed(job, error: str) -> None:
        adopt(job)
        asr_task_fail(asr_task_id=job.payload["asr_task_id"], error=error)

    with job_lease(job_id, on_failed=on_failed) as job:
        if job is None:  # done already, failed, or another worker holds it
            return
        adopt(job)
        try:
            with job_lease_heartbeat(job):  # the lease is short (ASR_LEASE_SECONDS); the model may take longer
                asr_task_process(asr_task_id=job.payload["asr_task_id"], attempt=job.attempts)
        except AsrError as error:
            if error.transient:
                raise JobRetry(f"{error.code}: {error.message}") from error
            raise JobFailed(error.code, error.message) from error
