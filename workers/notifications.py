"""Celery tasks for notifications handed over by lower apps (thin: take the durable job, call a service)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.notifications.account_lockout")
def account_lockout(job_id: int) -> int | None:
    """Tell an account holder that a login limit tripped (`accounts.services.account_lockout_hand_off`)."""
    from anmei.jobs.services import job_lease
    from anmei.notifications.services import account_lockout_notify

    with job_lease(job_id) as job:
        if job is None:
            return None
        notification = account_lockout_notify(user_id=job.payload["user_id"], episode=job.payload["episode"])
        return notification.id if notification else None
