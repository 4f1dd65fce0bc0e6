"""A consultant going away or offline: transfers waiting on them return to the queue (real socket, real worker)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.accounts.models import User
from anmei.conversations.models import Conversation, ConversationEvent, RoutingSettings
from anmei.conversations.services import conversation_create, conversation_transfer
from anmei.conversations.services.assignment import conversations_assign_sweep
from tests.conftest import make_user
from tests.helpers import console_open, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


def _is(action, conversation_id):
    return lambda e: (
        e.get("type") == "conversation.updated"
        and e.get("action") == action
        and e["conversation_id"] == conversation_id
    )


async def _status(conversation_id) -> str:
    return (await sync_to_async(Conversation.objects.get)(pk=conversation_id)).status


async def test_away_then_offline_target_returns_the_transfer_and_the_next_round_assigns_it(
    celery_worker, tenant_a, carol, cathy
):
    dora = await sync_to_async(make_user)(tenant_a, "dora", User.Role.CONSULTANT)
    await sync_to_async(RoutingSettings.objects.create)(tenant=tenant_a, mode="least_busy", capacity_per_consultant=5)
    console = await console_open(carol)
    conversation, _ = await sync_to_async(conversation_create)(customer=cathy, channel="web")
    await receive_until(console, _is("assigned", conversation.id))
    dora_console = await console_open(dora)

    # away: the invitation goes back to the queue; the next round gives it to Carol, the one online
    await sync_to_async(conversation_transfer)(user=carol, conversation_id=conversation.id, to_consultant_id=dora.id)
    await dora_console.send_json_to({"type": "presence.set", "status": "away"})
    returned = await receive_until(console, _is("transfer_returned", conversation.id))
    assert (returned["status"], returned["consultant_id"], returned["transfer_to_id"]) == ("waiting", None, None)
    again = await receive_until(console, _is("assigned", conversation.id))
    assert (again["consultant_id"], again["status"]) == (carol.id, "active")

    # offline (her console closes): the same
    await dora_console.send_json_to({"type": "presence.set", "status": "online"})
    await receive_until(dora_console, lambda e: e.get("type") == "presence.state")
    await sync_to_async(conversation_transfer)(user=carol, conversation_id=conversation.id, to_consultant_id=dora.id)
    assert await _status(conversation.id) == "transferring"
    await dora_console.disconnect()
    await receive_until(console, _is("transfer_returned", conversation.id))
    assert (await receive_until(console, _is("assigned", conversation.id)))["consultant_id"] == carol.id
    events = ConversationEvent.objects.filter(conversation_id=conversation.id, action="transfer_returned")
    assert await sync_to_async(events.count)() == 2
    await console.disconnect()


async def test_a_target_with_another_console_still_open_keeps_the_invitation(celery_worker, tenant_a, carol, cathy):
    dora = await sync_to_async(make_user)(tenant_a, "dora", User.Role.CONSULTANT)
    await sync_to_async(RoutingSettings.objects.create)(tenant=tenant_a, mode="round_robin", capacity_per_consultant=5)
    console = await console_open(carol)
    conversation, _ = await sync_to_async(conversation_create)(customer=cathy, channel="web")
    await receive_until(console, _is("assigned", conversation.id))
    first, second = await console_open(dora), await console_open(dora)
    await sync_to_async(conversation_transfer)(user=carol, conversation_id=conversation.id, to_consultant_id=dora.id)
    await first.disconnect()
    # the second tab still counts as online: the sweep (which also returns expired ones) keeps it
    await sync_to_async(conversations_assign_sweep)()
    assert await _status(conversation.id) == "transferring"
    await second.disconnect()
    await receive_until(console, _is("transfer_returned", conversation.id))
    assert (await receive_until(console, _is("assigned", conversation.id)))["consultant_id"] == carol.id
    await console.disconnect()


def test_manual_mode_keeps_the_transfer_and_the_sweep_returns_only_automatic_tenants(
    tenant_a, tenant_b, carol, cathy, bob, ben, bill
):
    RoutingSettings.objects.create(tenant=tenant_a, mode="manual")
    RoutingSettings.objects.create(tenant=tenant_b, mode="least_busy")
    dora = make_user(tenant_a, "dora", User.Role.CONSULTANT)
    manual, _ = conversation_create(customer=cathy, channel="web")
    auto, _ = conversation_create(customer=bill, channel="web")
    Conversation.objects.filter(pk=manual.pk).update(status="active", consultant=carol)
    Conversation.objects.filter(pk=auto.pk).update(status="active", consultant=ben)
    conversation_transfer(user=carol, conversation_id=manual.id, to_consultant_id=dora.id)
    conversation_transfer(user=ben, conversation_id=auto.id, to_consultant_id=bob.id)

    conversations_assign_sweep()  # nobody is online in either tenant

    assert Conversation.objects.get(pk=manual.pk).status == "transferring"
    returned = Conversation.objects.get(pk=auto.pk)
    assert (returned.status, returned.consultant_id, returned.transfer_to_id) == ("waiting", None, None)
