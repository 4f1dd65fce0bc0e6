"""Celery tasks: blacklist (thin: load by id, call a service, retry/alert)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.blacklist.push_to_bot", bind=True, max_retries=None, acks_late=True)
def push_to_bot(self, bot_id: int) -> str:
    """Push every unacknowledged blacklist change to one bot, in version order; retry on failure."""
    from anmei.blacklist.services import blacklist_push_pending

    countdown = blacklist_push_pending(bot_id=bot_id)
    if countdown is not None:
        raise self.retry(countdown=countdown)
    return "done"


@shared_task(name="workers.blacklist.expire_entries", acks_late=True)
def expire_entries() -> int:
    """Beat: remove expired entries and push the removals."""
    from anmei.blacklist.services import blacklist_expire

    return blacklist_expire()


@shared_task(name="workers.blacklist.resync_lagging", acks_late=True)
def resync_lagging() -> int:
    """Beat: re-run the push for bots behind their tenant's blacklist version."""
    from anmei.blacklist.services import blacklist_push_lagging

    return blacklist_push_lagging()
