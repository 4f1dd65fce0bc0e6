"""Celery tasks: session intelligence (thin: take the job or lock, call a service)."""

from __future__ import annotations

from celery import shared_task

# shared_task, not `celery_config.app`: services import these tasks at module top, and the worker's
# own `celery -A celery_config` start imports those services (admin autodiscovery) mid-way.


@shared_task(name="workers.ai.summarize")
def summarize(job_id: int) -> None:
    """Write a conversation's summary (durable job `ai_summary:<conversation>:<generation>`)."""
    from anmei.ai.summaries import summary_failed, summary_generate
    from anmei.jobs.services import job_lease

    def failed(job, error: str) -> None:
        summary_failed(
            conversation_id=job.payload["conversation_id"], generation=job.payload["generation"], error=error
        )

    with job_lease(job_id, on_failed=failed) as job:
        if job is None:
            return
        summary_generate(conversation_id=job.payload["conversation_id"], generation=job.payload["generation"])


@shared_task(name="workers.ai.suggest", acks_late=True)
def suggest(tenant_id: int, conversation_id: int, message_id: int) -> int:
    """Reply suggestions for a conversation's newest customer message (coalesced; one in flight)."""
    from anmei.ai.suggestions import suggestion_take

    return suggestion_take(tenant_id=tenant_id, conversation_id=conversation_id, message_id=message_id)
