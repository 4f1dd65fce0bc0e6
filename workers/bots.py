"""Celery tasks: bots (thin: take the durable job, call a service).

Each task takes only its job id (anmei.jobs): the row is the record, Celery the fast path. Attempts
of a delivery are counted in the database (BotDelivery.attempts), so a redelivered task does not
reset the 5/15/60 s schedule; a lost message is re-sent by the jobs sweep.
"""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.bots.deliver_message")
def deliver_message(job_id: int) -> str | None:
    """Send one stored message to its IM customer through the bot callback (idempotent per message)."""
    from anmei.bots.services import bot_delivery_attempt, bot_delivery_job_failed
    from anmei.jobs.services import JobFailed, JobRetry, job_lease

    with job_lease(job_id, on_failed=bot_delivery_job_failed) as job:
        if job is None:
            return None
        outcome, countdown = bot_delivery_attempt(message_id=job.payload["message_id"])
        if outcome == "retry":
            raise JobRetry("bot delivery failed", countdown=countdown)
        if outcome == "failed":  # the schedule ran out (alert raised): the job fails too, for /metrics
            raise JobFailed("bot_unreachable", "the bot did not accept the message after every retry")
        return outcome


@shared_task(name="workers.bots.auto_reply")
def auto_reply(job_id: int) -> int | None:
    """Answer a customer message nobody is online for (rule → AI gateway → away message).

    The name stays the bot gateway's (job rows name it); the answer is made by anmei.ai.autoreply.
    """
    from anmei.ai.autoreply import auto_reply_if_unanswered, auto_reply_job_failed
    from anmei.jobs.services import job_lease

    with job_lease(job_id, on_failed=auto_reply_job_failed) as job:
        if job is None:
            return None
        reply = auto_reply_if_unanswered(
            message_id=job.payload["message_id"], wait_for_welcome=job.attempts < job.max_attempts
        )
        return reply.id if reply else None


@shared_task(name="workers.bots.stale_sweep")
def stale_sweep() -> int:
    """Beat: one admin alert per bot that stopped sending heartbeats (per silence episode)."""
    from anmei.bots.services import bot_stale_sweep

    return bot_stale_sweep()
