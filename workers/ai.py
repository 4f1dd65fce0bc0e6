"""Celery tasks: session intelligence (thin: take the job or lock, call a service)."""

from __future__ import annotations

from celery_config import app
from workers.base import job_task

# Services never import these tasks (the import contract forbids anmei → workers): they hand work
# over by task name, as a durable job row or (suggestions) `send_task`.


def _summary_failed(job, error: str) -> None:
    from anmei.ai.services.summaries import summary_failed

    summary_failed(conversation_id=job.payload["conversation_id"], generation=job.payload["generation"], error=error)


@job_task("workers.ai.summarize", on_failed=_summary_failed)
def summarize(job) -> None:
    """Write a conversation's summary (durable job `ai_summary:<conversation>:<generation>`)."""
    from anmei.ai.services.summaries import summary_generate

    summary_generate(conversation_id=job.payload["conversation_id"], generation=job.payload["generation"])


@app.task(name="workers.ai.suggest")
def suggest(tenant_id: int, conversation_id: int, message_id: int) -> int:
    """Reply suggestions for a conversation's newest customer message (coalesced; one in flight; no job row)."""
    from anmei.ai.services.suggestions import suggestion_take

    return suggestion_take(tenant_id=tenant_id, conversation_id=conversation_id, message_id=message_id)


def _auto_reply_failed(job, error: str) -> None:
    from anmei.ai.services.autoreply import auto_reply_job_failed

    auto_reply_job_failed(job, error)


@job_task("workers.ai.auto_reply", on_failed=_auto_reply_failed)
def auto_reply(job) -> int | None:
    """Answer a customer message nobody is online for (rule → AI gateway → away message)."""
    from anmei.ai.services.autoreply import auto_reply_if_unanswered

    reply = auto_reply_if_unanswered(
        message_id=job.payload["message_id"], wait_for_welcome=job.attempts < job.max_attempts
    )
    return reply.id if reply else None
