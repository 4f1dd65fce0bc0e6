"""Celery tasks: blacklist changes, expiry and the pushes to the bots (thin: take the durable job, call a service)."""

from __future__ import annotations

from celery_config import app
from workers.base import job_task


@job_task("workers.blacklist.fan_out")
def fan_out(job) -> int | None:
    """A blacklist change: schedule one push job per active bot of its tenant (the bot gateway's side)."""
    from anmei.bots.services.blacklist_push import blacklist_change_fan_out

    return blacklist_change_fan_out(tenant_id=job.tenant_id, version=job.payload["version"])


@job_task("workers.blacklist.push_to_bot")
def push_to_bot(job) -> str | None:
    """Push every unacknowledged blacklist change to one bot, in version order; retry after the countdown."""
    from anmei.bots.services.blacklist_push import blacklist_push_pending
    from anmei.jobs.services import JobRetry

    countdown = blacklist_push_pending(bot_id=job.payload["bot_id"], claim_seconds=job.lease_seconds)
    if countdown is not None:
        raise JobRetry("blacklist push pending", countdown=countdown)
    return "done"


@app.task(name="workers.blacklist.expire_entries")
def expire_entries() -> int:
    """Beat: remove expired entries and push the removals."""
    from anmei.blacklist.services import blacklist_expire

    return blacklist_expire()


@app.task(name="workers.blacklist.resync_lagging")
def resync_lagging() -> int:
    """Beat: schedule a push for bots behind their tenant's blacklist version (e.g. reactivated)."""
    from anmei.bots.services.blacklist_push import blacklist_push_lagging

    return blacklist_push_lagging()
