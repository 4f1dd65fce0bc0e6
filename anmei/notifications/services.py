from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from anmei.accounts.models import User
from anmei.common import realtime
from anmei.notifications.backends import StoredBackend, backend_for
from anmei.notifications.models import AdminAlert, Notification

logger = logging.getLogger("anmei.alerts")


def admin_alert_raise(
    *,
    tenant_id: int | None,
    source: str,
    code: str,
    message: str,
    dedupe_key: str,
    details: dict[str, Any] | None = None,
    level: str = AdminAlert.Level.ERROR,
) -> tuple[AdminAlert, bool]:
    """Store an alert once per `dedupe_key`, log it, and push `admin.alert` to online admins.

    Returns (alert, created). A retried task raising the same incident gets the existing alert and
    pushes nothing again.
    """
    try:
        with transaction.atomic():
            alert = AdminAlert.objects.create(
                tenant_id=tenant_id,
                source=source,
                code=code,
                level=level,
                message=message,
                details=details or {},
                dedupe_key=dedupe_key,
            )
    except IntegrityError:
        return AdminAlert.objects.get(dedupe_key=dedupe_key), False
    logger.error(
        "admin alert",
        extra={"tenant_id": tenant_id, "alert_id": alert.id, "source": source, "code": code, "details": details},
    )
    if tenant_id is not None:
        event = {
            "type": "admin.alert",
            "alert_id": alert.id,
            "source": source,
            "code": code,
            "level": level,
            "message": message,
            "details": alert.details,
            "timestamp": alert.created_at.isoformat(),
        }
        transaction.on_commit(lambda: _push_alert(tenant_id, event))
    return alert, True


def _push_alert(tenant_id: int, event: dict) -> None:
    realtime.broadcast_to_admins(tenant_id, event)  # the stored alert is the record; the push is a courtesy


def admin_alert_acknowledge(*, alert: AdminAlert, user) -> AdminAlert:
    if alert.acknowledged_at is None:
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = user
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
    return alert


def notification_create(
    *,
    tenant_id: int,
    user_id: int,
    kind: str,
    title: str,
    body: str,
    payload: dict[str, Any],
    backend: str,
    dedupe_key: str,
) -> tuple[Notification, bool]:
    """Create the notification once per (tenant, dedupe_key); a repeat returns the first row."""
    try:
        with transaction.atomic():
            return (
                Notification.objects.create(
                    tenant_id=tenant_id,
                    user_id=user_id,
                    kind=kind,
                    title=title,
                    body=body,
                    payload=payload,
                    backend=backend,
                    dedupe_key=dedupe_key,
                ),
                True,
            )
    except IntegrityError:
        return Notification.objects.get(tenant_id=tenant_id, dedupe_key=dedupe_key), False


def notification_send(*, notification: Notification, backend) -> Notification:
    """Hand a notification to its backend unless that already happened; backend errors propagate."""
    if notification.status in (Notification.Status.SENT, Notification.Status.DELIVERED):
        return notification
    notification.attempts += 1
    try:
        sent = backend.send(notification)
    except Exception as exc:
        notification.status = Notification.Status.FAILED
        notification.last_error = str(exc)[:500]
        notification.save(update_fields=["attempts", "status", "last_error"])
        raise
    if sent:
        notification.status = Notification.Status.SENT
        notification.sent_at = timezone.now()
    notification.last_error = ""
    notification.save(update_fields=["attempts", "status", "sent_at", "last_error"])
    return notification


LOCKOUT_TITLE = "Sign-in attempts to your account were refused"
LOCKOUT_BODY = (
    "Too many sign-in attempts for your account were made, so further attempts are refused for a while. "
    "If it was not you, change your password."
)


def account_lockout_notify(*, user_id: int, episode: int) -> Notification | None:
    """Tell an account holder that a login limit of their account tripped (the accounts hand-off job).

    One notification per episode (its dedupe key), through the stored backend: the holder sees it on
    the next console connection. A deleted or tenant-less user gets nothing.
    """
    user = User.objects.filter(pk=user_id).first()
    if user is None or not user.tenant_id:
        return None
    backend = backend_for(StoredBackend.name)
    notification, _ = notification_create(
        tenant_id=user.tenant_id,
        user_id=user.id,
        kind="account_lockout",
        title=LOCKOUT_TITLE,
        body=LOCKOUT_BODY,
        payload={"type": "notification", "kind": "account_lockout", "title": LOCKOUT_TITLE, "message": LOCKOUT_BODY},
        backend=backend.name,
        dedupe_key=f"account_lockout:{user.id}:{episode}",
    )
    return notification_send(notification=notification, backend=backend)


def notifications_take_undelivered(*, user) -> list[dict[str, Any]]:
    """Mark the user's undelivered notifications delivered and return them as console events.

    Called when a console connects: whatever the backend did, the console shows what was missed.
    The conditional UPDATE makes two tabs connecting at once show each notification once.
    """
    if not user.tenant_id:
        return []
    pending = list(
        Notification.objects.filter(tenant_id=user.tenant_id, user_id=user.id, delivered_at__isnull=True)[:50]
    )
    events = []
    now = timezone.now()
    for notification in pending:
        claimed = Notification.objects.filter(pk=notification.pk, delivered_at__isnull=True).update(
            delivered_at=now, status=Notification.Status.DELIVERED
        )
        if claimed:
            event = (
                dict(notification.payload)
                if notification.payload.get("type")
                else {
                    "type": "notification",
                    "title": notification.title,
                    "message": notification.body,
                }
            )
            event["notification_id"] = notification.id
            event["delivered_late"] = True
            events.append(event)
    return events


def jobs_stuck_alert() -> int:
    """Raise an AdminAlert per tenant and pipeline with jobs due for longer than the stuck threshold (beat).

    One alert per episode: the dedupe key names the oldest stuck job, so a pipeline that stays stuck
    is not re-alerted every sweep, and a new episode is. Returns the alerts newly raised.
    """
    from anmei.jobs.selectors import jobs_stuck_groups

    raised = 0
    for group in jobs_stuck_groups():
        _, created = admin_alert_raise(
            tenant_id=group["tenant_id"],
            source="jobs",
            code="jobs_stuck",
            message=f"{group['n']} {group['kind']} job(s) due for over {settings.JOBS_STUCK_AFTER_SECONDS:g} s "
            "and not running: workers or broker may be down",
            dedupe_key=f"jobs_stuck:{group['tenant_id']}:{group['kind']}:{group['oldest']}",
            details={"kind": group["kind"], "count": group["n"], "oldest_job_id": group["oldest"]},
        )
        raised += int(created)
    return raised
