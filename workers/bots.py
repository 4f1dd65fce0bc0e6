"""Celery tasks: bots (thin: take the durable job, call a service).

Each task takes only its job id (anmei.jobs): the row is the record, Celery the fast path. Attempts
of a delivery are counted in the database (BotDelivery.attempts), so a redelivered task does not
reset the 5/15/60 s schedule; a lost message is re-sent by the jobs sweep.
"""

from __future__ import annotations

from celery_config import app
from workers.base import job_task


def _delivery_failed(job, error: str) -> None:
    from anmei.bots.services import bot_delivery_job_failed

    bot_delivery_job_failed(job, error)


@job_task("workers.bots.deliver_message", on_failed=_delivery_failed)
def deliver_message(job) -> str | None:
    """Send one stored message to its IM customer through the bot callback (idempotent per message)."""
    from anmei.bots.services import bot_delivery_attempt
    from anmei.jobs.services import JobFailed, JobRetry

    outcome, countdown = bot_delivery_attempt(message_id=job.payload["message_id"])
    if outcome == "retry":
        raise JobRetry("bot delivery failed", countdown=countdown)
    if outcome == "failed":  # the schedule ran out (alert raised): the job fails too, for /metrics
        raise JobFailed("bot_unreachable", "the bot did not accept the message after every retry")
    return outcome


@app.task(name="workers.bots.auto_reply")
def auto_reply_queued_before_rename(job_id: int) -> int | None:
    """The auto-reply's old task name, for job rows and broker messages written before it moved to ai."""
    from workers.ai import auto_reply

    return auto_reply(job_id)


@app.task(name="workers.bots.stale_sweep")
def stale_sweep() -> int:
    """Beat: one admin alert per bot that stopped sending heartbeats (per silence episode)."""
    from anmei.bots.services import bot_stale_sweep

    return bot_stale_sweep()
