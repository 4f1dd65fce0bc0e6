"""Registration automation end to end: real worker, real sidecar, WebSockets, PostgreSQL, Redis."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.accounts.models import User
from anmei.automation.models import AutomationRun, AutomationStep
from anmei.conversations.models import Conversation, Message
from tests.fixtures_automation import await_for, receive_type, register, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("async_db_closed")]

STEP_ORDER = [
    "create_default_conversation",
    "generate_welcome",
    "deliver_welcome",
    "notify_consultants",
    "record_metrics",
]


def _finished_run(customer_id: int) -> AutomationRun | None:
    return AutomationRun.objects.filter(customer_id=customer_id).exclude(status="running").first()


async def test_registration_gives_personalised_welcome_over_ws_and_notifies_online_consultant(
    tenant_a, carol, anon, celery_worker, automation_mcp_url
):
    console = await ws_connect("/ws/console/", carol)

    created = await sync_to_async(register)(anon, "dora", nickname="Dora")
    customer = await User.objects.aget(pk=created["id"])
    customer_ws = await ws_connect("/ws/customer/", customer)

    welcome = await receive_type(customer_ws, "message.new")
    new_customer = await receive_type(console, "new_customer")

    run = await await_for(lambda: _finished_run(customer.id))
    conversation = await Conversation.objects.aget(customer=customer)
    messages = [m async for m in Message.objects.filter(conversation=conversation)]
    assert run.status == "succeeded"
    assert run.welcome_source == "agent" and run.welcome_provider == "local"
    assert conversation.status == "waiting" and conversation.is_default
    assert [(m.sender_type, m.external_id) for m in messages] == [("bot", f"welcome:{customer.id}")]
    assert "Dora" in messages[0].content
    assert welcome["message"]["content"] == messages[0].content
    assert welcome["conversation_id"] == conversation.id
    assert set(new_customer) == {"type", "title", "message", "customer_id", "conversation_id", "timestamp", "action"}
    assert (new_customer["title"], new_customer["action"]) == ("新客户注册", "claim_customer")
    assert (new_customer["customer_id"], new_customer["conversation_id"]) == (customer.id, conversation.id)
    steps = [s async for s in AutomationStep.objects.filter(run=run).order_by("started_at")]
    assert [(s.step, s.attempt, s.success) for s in steps] == [(name, 1, True) for name in STEP_ORDER]
    assert run.end_to_end_ms is not None and run.end_to_end_ms > 0
    await console.disconnect()
    await customer_ws.disconnect()


def test_automation_switched_off_registers_without_a_run(tenant_a, anon, celery_worker):
    from anmei.automation.services import automation_settings_update

    automation_settings_update(tenant_id=tenant_a.id, enabled=False)
    created = register(anon, "erin")
    assert User.objects.filter(pk=created["id"], role="customer").exists()
    assert AutomationRun.objects.count() == 0
    assert Conversation.objects.filter(customer_id=created["id"]).count() == 0
