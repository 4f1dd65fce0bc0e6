"""Retries, exhaustion, admin retry, offline notifications and idempotency of every step."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.accounts.models import User
from anmei.automation.models import STEPS, AutomationRun, AutomationStep
from anmei.automation.services import automation_settings_update
from anmei.conversations.models import Conversation, Message
from anmei.notifications.models import AdminAlert, Notification
from tests.conftest import make_user
from tests.fixtures_automation import FAST_COUNTDOWNS, await_for, receive_type, register, wait_for, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("async_db_closed")]


def _run_done(customer_id: int, generation: int = 0):
    return (
        AutomationRun.objects.filter(customer_id=customer_id, generation=generation).exclude(status="running").first()
    )


def _use_webhook(tenant, url: str):
    automation_settings_update(tenant_id=tenant.id, notification_backend="webhook", push_gateway_url=url)


def test_failing_step_is_retried_with_the_configured_countdowns(
    tenant_a, carol, anon, celery_worker, fast_retries, fake_push
):
    fake_push.fail_first = 2
    _use_webhook(tenant_a, fake_push.url)

    created = register(anon, "fay")
    run = wait_for(lambda: _run_done(created["id"]))

    assert run.status == "succeeded"
    attempts = list(AutomationStep.objects.filter(run=run, step="notify_consultants").order_by("attempt"))
    assert [(s.attempt, s.success, s.countdown) for s in attempts] == [
        (1, False, FAST_COUNTDOWNS[0]),
        (2, False, FAST_COUNTDOWNS[1]),
        (3, True, None),
    ]
    assert "push gateway answered 503" in attempts[0].error
    for before, after in zip(attempts, attempts[1:], strict=False):  # the worker waited at least the countdown
        assert (after.started_at - before.finished_at).total_seconds() >= before.countdown - 0.05
    assert fake_push.attempts == 3
    assert [r["idempotency_key"] for r in fake_push.received] == [f"new_customer:{created['id']}:{carol.id}"]
    notification = Notification.objects.get()
    assert (notification.user_id, notification.status, notification.attempts) == (carol.id, "sent", 3)
    assert AdminAlert.objects.count() == 0


async def test_exhausted_retries_fail_the_run_and_push_an_admin_alert_then_admin_retry_finishes_it(
    tenant_a, alice, carol, anon, celery_worker, fast_retries, fake_push, client
):
    fake_push.always_fail = True
    await sync_to_async(_use_webhook)(tenant_a, fake_push.url)
    admin_ws = await ws_connect("/ws/console/", alice)

    created = await sync_to_async(register)(anon, "gina")
    alert_event = await receive_type(admin_ws, "admin.alert", timeout=20)
    run = await await_for(lambda: _run_done(created["id"]))

    assert (run.status, run.failed_step) == ("failed", "notify_consultants")
    attempts = [s async for s in AutomationStep.objects.filter(run=run, step="notify_consultants").order_by("attempt")]
    assert [(s.attempt, s.success, s.countdown) for s in attempts] == [
        (1, False, 0.2),
        (2, False, 0.4),
        (3, False, 0.6),
        (4, False, None),
    ]
    assert not await AutomationStep.objects.filter(run=run, step="record_metrics").aexists()
    alert = await AdminAlert.objects.aget()
    assert (alert.tenant_id, alert.source, alert.code) == (
        tenant_a.id,
        "registration_automation",
        "automation_run_failed",
    )
    assert alert.details["run_id"] == run.id and alert.details["attempts"] == 4
    assert (alert_event["alert_id"], alert_event["code"]) == (alert.id, "automation_run_failed")

    # The gateway recovers; an admin retries the run from Django admin.
    fake_push.always_fail = False
    await sync_to_async(client.force_login)(alice)
    response = await sync_to_async(client.post)(
        "/admin/automation/automationrun/", {"action": "retry_failed", "_selected_action": [run.id]}
    )
    assert response.status_code == 302
    run = await await_for(lambda: _run_done(created["id"], generation=1))

    assert run.status == "succeeded"
    assert await Conversation.objects.filter(customer_id=created["id"]).acount() == 1
    assert await Message.objects.filter(external_id=f"welcome:{created['id']}").acount() == 1
    assert await Notification.objects.acount() == 1
    assert len(fake_push.received) == 1
    assert await AdminAlert.objects.acount() == 1
    await admin_ws.disconnect()


async def test_offline_consultants_get_stored_notifications_shown_on_next_console_connect(
    tenant_a, carol, anon, celery_worker, tenant_b, ben
):
    cora = await sync_to_async(make_user)(tenant_a, "cora", User.Role.CONSULTANT)
    created = await sync_to_async(register)(anon, "hana")
    run = await await_for(lambda: _run_done(created["id"]))
    assert run.status == "succeeded"
    rows = [n async for n in Notification.objects.order_by("user_id")]
    assert [(n.user_id, n.kind, n.backend, n.status) for n in rows] == [
        (carol.id, "new_customer", "stored", "pending"),
        (cora.id, "new_customer", "stored", "pending"),
    ]
    assert not await Notification.objects.filter(user=ben).aexists()  # the other tenant's consultant

    console = await ws_connect("/ws/console/", carol)
    shown = await receive_type(console, "new_customer")
    assert (shown["customer_id"], shown["conversation_id"]) == (created["id"], run.conversation_id)
    assert shown["notification_id"] == rows[0].id and shown["delivered_late"] is True
    assert await console.receive_nothing(timeout=0.3)
    await console.disconnect()

    again = await ws_connect("/ws/console/", carol)
    assert await again.receive_nothing(timeout=0.3)  # shown once
    await again.disconnect()
    carol_row = await Notification.objects.aget(user=carol)
    assert carol_row.status == "delivered" and carol_row.delivered_at is not None
    assert (await Notification.objects.aget(user=cora)).status == "pending"


async def test_every_task_delivered_twice_creates_one_of_everything(tenant_a, carol, celery_worker, automation_mcp_url):
    from anmei.automation.services import automation_step_schedule
    from anmei.jobs.models import Job
    from celery_config import app

    console = await ws_connect("/ws/console/", carol)
    customer = await sync_to_async(make_user)(tenant_a, "ivy", nickname="Ivy")  # no registration: the run is ours
    run = await AutomationRun.objects.acreate(tenant=tenant_a, customer=customer)
    await sync_to_async(automation_step_schedule)(run=run, step=STEPS[0])

    def duplicate_each_step_message():  # every step's message reaches the broker a second time
        sent: set[int] = set()

        def more():
            for job in Job.objects.filter(kind="automation", payload__run_id=run.id).exclude(pk__in=sent):
                app.send_task(job.task, args=[job.id])
                sent.add(job.id)
            return _run_done(customer.id) if len(sent) == len(STEPS) else None

        return more

    run = await await_for(duplicate_each_step_message())
    assert run.status == "succeeded"
    assert await receive_type(console, "new_customer")
    assert await console.receive_nothing(timeout=0.5)  # pushed once
    assert await Conversation.objects.filter(customer=customer).acount() == 1
    welcome = await Message.objects.aget(conversation__customer=customer)
    assert welcome.external_id == f"welcome:{customer.id}" and "Ivy" in welcome.content
    rows = [(s.step, s.attempt, s.success) async for s in AutomationStep.objects.filter(run=run).order_by("id")]
    assert rows == [(step, 1, True) for step in STEPS]
    assert await Notification.objects.acount() == 0  # carol was online
    await console.disconnect()


class RecordingBackend:
    """A project-defined carrier, registered by name in settings.NOTIFICATION_BACKENDS."""

    name = "recording"
    sent: list[int] = []

    def send(self, notification) -> bool:
        RecordingBackend.sent.append(notification.id)
        return True


def test_notification_backends_are_pluggable_by_name(tenant_a, carol, settings):
    from django.core.exceptions import ValidationError

    from anmei.automation.services import automation_settings_update
    from anmei.notifications.backends import StoredBackend, WebhookBackend, backend_for

    settings.NOTIFICATION_BACKENDS = {
        **settings.NOTIFICATION_BACKENDS,
        "recording": "tests.test_automation_retries.RecordingBackend",
    }
    assert isinstance(backend_for("recording"), RecordingBackend)
    assert isinstance(backend_for("webhook", url="http://x"), WebhookBackend)
    assert isinstance(backend_for("no-such-backend"), StoredBackend)
    assert automation_settings_update(tenant_id=tenant_a.id, notification_backend="recording").notification_backend
    with pytest.raises(ValidationError):
        automation_settings_update(tenant_id=tenant_a.id, notification_backend="carrier-pigeon")
