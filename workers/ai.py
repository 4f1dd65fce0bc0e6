"""Celery tasks: session intelligence (thin: take the job or lock, call a service)."""

from __future__ import annotations

from celery import shared_task

# Services never import these tasks (the import contract forbids anmei → workers): they hand work
# over by task name, as a durable job row or (suggestions) `send_task`.


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


@shared_task(name="workers.ai.auto_reply")
def auto_reply(job_id: int) -> int | None:
    """Answer a customer message nobody is online for (rule → AI gateway → away message)."""
    from anmei.ai.autoreply import auto_reply_if_unanswered, auto_reply_job_failed
    from anmei.jobs.services import job_lease

    with job_lease(job_id, on_failed=auto_reply_job_failed) as job:
        if job is None:
            return None
        reply = auto_reply_if_unanswered(
            message_id=job.payload["message_id"], wait_for_welcome=job.attempts < job.max_attempts
        )
        return reply.id if reply else None
