"""Delivery status of messages to IM customers: pending/sent/failed, the retry schedule, a retry (API.md)."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.bots.models import BotDelivery, GatewaySettings
from anmei.bots.services import bot_delivery_attempt, bot_delivery_retry
from anmei.conversations.models import Conversation
from anmei.jobs.models import Job
from tests.conftest import client_for, make_user
from tests.fixtures_automation import receive_type, ws_connect
from tests.fixtures_bots import SEND_PATH, make_bot
from tests.helpers import assert_error, poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


def _im_conversation(tenant, bot, consultant) -> Conversation:
    customer = make_user(tenant, "wecom:wx-7", source="wecom", platform_user_id="wx-7")
    return Conversation.objects.create(
        tenant=tenant,
        customer=customer,
        channel="wecom",
        bot_instance_id=bot.id,
        status="active",
        consultant=consultant,
    )


def test_failed_reply_shows_failed_after_the_schedule_and_a_retry_sends_it(
    tenant_a, alice, carol, fake_bot, celery_worker
):
    bot, _, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    conversation = _im_conversation(tenant_a, bot, carol)
    put = client_for(alice).put("/api/v1/admin/bot-gateway", {"retry_countdowns": [0.2, 0.2]}, format="json")
    assert (put.status_code, put.json()) == (200, {"retry_countdowns": [0.2, 0.2]})
    fake_bot.script(bot.id, 500, 500, 500)
    client = client_for(carol)

    # when Carol replies and the bot keeps failing
    sent = client.post(
        f"/api/v1/conversations/{conversation.id}/messages", {"type": "text", "content": "您好"}, format="json"
    )

    # then the reply says pending, then failed after the first try and the two retries
    assert sent.status_code == 201
    message_id = sent.json()["id"]
    assert sent.json()["delivery"] == {"status": "pending", "attempts": 0}
    poll(lambda: BotDelivery.objects.filter(message_id=message_id, status="failed").exists())
    listed = client.get(f"/api/v1/conversations/{conversation.id}/messages").json()["results"]
    assert [m["delivery"] for m in listed] == [{"status": "failed", "attempts": 3}]

    # when she retries (the bot is back)
    retried = client.post(f"/api/v1/messages/{message_id}/retry-delivery")

    # then it is accepted as a durable job, sent once more, and the console follows
    assert (retried.status_code, retried.json()) == (
        202,
        {"message_id": message_id, "delivery": {"status": "pending", "attempts": 0}},
    )
    assert Job.objects.filter(kind="bots.delivery", key__startswith=f"message:{message_id}:retry:").count() == 1
    poll(lambda: BotDelivery.objects.filter(message_id=message_id, status="sent").exists())
    assert [r.answered for r in fake_bot.requests(path=SEND_PATH)] == [500, 500, 500, 200]
    listed = client.get(f"/api/v1/conversations/{conversation.id}/messages").json()["results"]
    assert [m["delivery"] for m in listed] == [{"status": "sent", "attempts": 1}]
    # a delivered message cannot be retried
    again = assert_error(client.post(f"/api/v1/messages/{message_id}/retry-delivery"), 409, "delivery_not_failed")
    assert again["details"]["status"] == "sent"


def test_retry_is_refused_where_it_makes_no_sense(tenant_a, tenant_b, carol, cathy, unused_url):
    bot, _, _ = make_bot(tenant_a, callback_url=unused_url)
    conversation = _im_conversation(tenant_a, bot, carol)
    from anmei.conversations.services import message_create

    reply, _ = message_create(conversation=conversation, sender_type="consultant", sender=carol, content="hi")
    BotDelivery.objects.create(tenant=tenant_a, message=reply, bot=bot, status="failed", attempts=4)
    web = Conversation.objects.create(tenant=tenant_a, customer=cathy, channel="web")
    web_message, _ = message_create(conversation=web, sender_type="bot", content="欢迎")
    url = f"/api/v1/messages/{reply.id}/retry-delivery"

    assert_error(client_for(cathy).post(url), 403)
    assert_error(client_for(make_user(tenant_b, "ben2", "consultant")).post(url), 404, "not_found")
    assert_error(client_for(carol).post(f"/api/v1/messages/{web_message.id}/retry-delivery"), 404, "not_found")
    assert BotDelivery.objects.get(message=reply).status == "failed"
    assert Job.objects.filter(kind="bots.delivery").count() == 0
    # web messages carry no delivery
    listed = client_for(carol).get(f"/api/v1/conversations/{web.id}/messages").json()["results"]
    assert [m["delivery"] for m in listed] == [None]


def test_gateway_schedule_is_the_tenant_admins_and_bad_values_change_nothing(alice, carol, bob):
    client = client_for(alice)
    assert client.get("/api/v1/admin/bot-gateway").json() == {"retry_countdowns": [5.0, 15.0, 60.0]}
    for bad in ([-1], ["x"], [1] * 11, [3601], "5,15", None):
        assert_error(client.put("/api/v1/admin/bot-gateway", {"retry_countdowns": bad}, format="json"), 400)
    assert_error(client_for(carol).put("/api/v1/admin/bot-gateway", {"retry_countdowns": [1]}, format="json"), 403)
    assert not GatewaySettings.objects.exists()
    assert client.put("/api/v1/admin/bot-gateway", {"retry_countdowns": [1, 2]}, format="json").status_code == 200
    assert client_for(bob).get("/api/v1/admin/bot-gateway").json() == {"retry_countdowns": [5.0, 15.0, 60.0]}
    assert GatewaySettings.objects.get().retry_countdowns == [1, 2]


@pytest.mark.usefixtures("async_db_closed")
async def test_every_delivery_change_is_pushed_to_the_console(tenant_a, carol, fake_bot):
    from anmei.conversations.services import message_create

    bot, _, _ = await sync_to_async(make_bot)(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    conversation = await sync_to_async(_im_conversation)(tenant_a, bot, carol)
    await GatewaySettings.objects.acreate(tenant=tenant_a, retry_countdowns=[])
    reply, _ = await sync_to_async(message_create)(
        conversation=conversation, sender_type="consultant", sender=carol, content="您好"
    )
    fake_bot.script(bot.id, 500)
    console = await ws_connect("/ws/console/", carol)

    # a failing send with no retries left: failed
    assert await sync_to_async(bot_delivery_attempt)(message_id=reply.id) == ("failed", None)
    failed = await receive_type(console, "message.updated")
    assert failed == {
        "type": "message.updated",
        "conversation_id": conversation.id,
        "message": {"id": reply.id, "delivery": {"status": "failed", "attempts": 1}},
    }
    # a retry: pending again, then sent
    await sync_to_async(bot_delivery_retry)(user=carol, message_id=reply.id)
    pending = await receive_type(console, "message.updated")
    assert pending["message"]["delivery"] == {"status": "pending", "attempts": 0}
    assert await sync_to_async(bot_delivery_attempt)(message_id=reply.id) == ("sent", None)
    sent = await receive_type(console, "message.updated")
    assert sent["message"]["delivery"] == {"status": "sent", "attempts": 1}
    await console.disconnect()


def test_a_photo_for_an_im_customer_reaches_the_bot_with_a_link_it_can_fetch(
    tenant_a, carol, fake_bot, celery_worker, media_dir, client
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.test_media import PNG

    bot, _, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    conversation = _im_conversation(tenant_a, bot, carol)
    upload = {"type": "image", "file": SimpleUploadedFile("a.png", PNG), "content": "术后护理示意图"}

    sent = client_for(carol).post(f"/api/v1/conversations/{conversation.id}/messages", upload, format="multipart")

    assert sent.status_code == 201 and sent.json()["delivery"] == {"status": "pending", "attempts": 0}
    poll(lambda: BotDelivery.objects.filter(message_id=sent.json()["id"], status="sent").exists())
    [request] = fake_bot.requests(path=SEND_PATH)
    assert (request.body["type"], request.body["content"]) == ("image", "术后护理示意图")
    assert client.get(request.body["media_url"]).content == PNG
