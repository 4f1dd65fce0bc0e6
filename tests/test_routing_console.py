"""A consultant opening the console, or coming back from away, is given waiting work (real worker, real socket)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.conversations.models import Conversation, RoutingSettings
from anmei.conversations.services import conversation_create, conversation_end
from anmei.jobs.models import Job
from tests.helpers import console_open, poll, receive_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


async def test_coming_online_and_back_from_away_takes_waiting_work(celery_worker, tenant_a, carol, cathy):
    await sync_to_async(RoutingSettings.objects.create)(tenant=tenant_a, mode="least_busy", capacity_per_consultant=1)
    first, _ = await sync_to_async(conversation_create)(customer=cathy, channel="web")
    # nobody online: it waits
    assert (await sync_to_async(Conversation.objects.get)(pk=first.pk)).status == "waiting"

    console = await console_open(carol)
    assigned = await receive_until(
        console, lambda e: e.get("type") == "conversation.updated" and e.get("action") == "assigned"
    )
    assert (assigned["conversation_id"], assigned["consultant_id"], assigned["status"]) == (
        first.id,
        carol.id,
        "active",
    )

    # away: a new one waits even after she frees her place
    await console.send_json_to({"type": "presence.set", "status": "away"})
    await receive_until(console, lambda e: e.get("type") == "presence.state")
    await sync_to_async(conversation_end)(user=carol, conversation_id=first.id)
    second, _ = await sync_to_async(conversation_create)(customer=cathy, channel="web")
    jobs = Job.objects.filter(kind="conversations.assign", tenant=tenant_a)
    # the rounds for "freed" and "waiting" have run (and found nobody online)
    assert await sync_to_async(poll)(
        lambda: jobs.count() == 4 and not jobs.exclude(state=Job.State.DONE).exists(), timeout=30
    )
    assert (await sync_to_async(Conversation.objects.get)(pk=second.pk)).status == "waiting"

    await console.send_json_to({"type": "presence.set", "status": "online"})
    back = await receive_until(
        console,
        lambda e: e.get("type") == "conversation.updated" and e.get("action") == "assigned",
    )
    assert (back["conversation_id"], back["consultant_id"]) == (second.id, carol.id)
    await console.disconnect()
