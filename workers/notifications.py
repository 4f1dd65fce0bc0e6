"""Celery tasks for notifications handed over by lower apps (thin: take the durable job, call a service)."""

from __future__ import annotations

from workers.base import job_task


@job_task("workers.notifications.account_lockout")
def account_lockout(job) -> int | None:
    """Tell an account holder that a login limit tripped (`accounts.services.account_lockout_hand_off`)."""
    from anmei.notifications.services import account_lockout_notify

    notification = account_lockout_notify(user_id=job.payload["user_id"], episode=job.payload["episode"])
    return notification.id if notification else None
