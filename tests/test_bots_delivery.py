"""Outbound to IM customers through a real worker and the fake bot: signed, once, retried, alerted."""

from __future__ import annotations

import time

import pytest

from anmei.accounts.models import User
from anmei.blacklist.models import BlacklistEntry
from anmei.bots.models import BotDelivery, BotInstance
from anmei.bots.services import bot_delivery_attempt
from anmei.conversations.models import Conversation, Message
from anmei.conversations.services import message_create
from anmei.conversations.services.handoffs import message_deliver_schedule
from anmei.notifications.models import AdminAlert
from tests.conftest import make_user
from tests.fixtures_bots import SEND_PATH, bot_client, bot_fast_retries, inbound, make_bot
from tests.helpers import poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


def _im_conversation(tenant, bot, *, user_id: str = "wx-42") -> Conversation:
    """An IM customer and their conversation made directly (no registration automation in the way)."""
    customer = make_user(tenant, f"wecom:{user_id}", source="wecom", platform_user_id=user_id)
    return Conversation.objects.create(
        tenant=tenant, customer=customer, channel="wecom", bot_instance_id=bot.id, status="waiting"
    )


def _sends(fake, message_id: int):
    return [r for r in fake.requests(path=SEND_PATH) if (r.body or {}).get("message_id") == message_id]


def test_consultant_reply_reaches_the_im_customer_signed_and_once(tenant_a, carol, as_user, fake_bot, celery_worker):
    bot, _, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    conversation = _im_conversation(tenant_a, bot)
    client = as_user(carol)
    assert client.post(f"/api/v1/conversations/{conversation.id}/claim").status_code == 200
    response = client.post(
        f"/api/v1/conversations/{conversation.id}/messages",
        {"type": "text", "content": "您好，我是顾问Carol"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    reply_id = response.json()["id"]

    assert fake_bot.wait_for(lambda _: len(_sends(fake_bot, reply_id)) == 1)
    [request] = _sends(fake_bot, reply_id)
    assert request.signature_ok and request.answered == 200
    assert request.body["user_id"] == "wx-42" and request.body["platform"] == "wecom"
    assert request.body["content"] == "您好，我是顾问Carol" and request.body["sender_type"] == "consultant"
    assert poll(lambda: BotDelivery.objects.filter(message_id=reply_id, status="sent").exists())

    # asking again (a redelivered task, a second caller) sends nothing more
    message_deliver_schedule(tenant_id=tenant_a.id, message_id=reply_id)
    assert bot_delivery_attempt(message_id=reply_id) == ("sent", None)
    time.sleep(0.3)
    assert len(_sends(fake_bot, reply_id)) == 1
    assert BotDelivery.objects.get(message_id=reply_id).attempts == 1


def test_bot_failing_twice_then_ok_gets_the_message_exactly_once_more(tenant_a, fake_bot, celery_worker):
    bot, _, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    bot_fast_retries(tenant_a)
    fake_bot.script(bot.id, 500, 500)
    conversation = _im_conversation(tenant_a, bot)
    message, _ = message_create(conversation=conversation, sender_type="bot", content="欢迎")
    message_deliver_schedule(tenant_id=tenant_a.id, message_id=message.id)

    assert poll(lambda: BotDelivery.objects.filter(message_id=message.id, status="sent").exists())
    assert [r.answered for r in _sends(fake_bot, message.id)] == [500, 500, 200]
    assert all(r.signature_ok for r in _sends(fake_bot, message.id))
    assert BotDelivery.objects.get(message_id=message.id).attempts == 3
    assert AdminAlert.objects.count() == 0


def test_unreachable_bot_raises_an_admin_alert_after_the_schedule(tenant_a, unused_url, celery_worker):
    bot, _, _ = make_bot(tenant_a, callback_url=unused_url)
    bot_fast_retries(tenant_a, [0.2, 0.2, 0.2])
    conversation = _im_conversation(tenant_a, bot)
    message, _ = message_create(conversation=conversation, sender_type="bot", content="欢迎")
    message_deliver_schedule(tenant_id=tenant_a.id, message_id=message.id)

    assert poll(lambda: AdminAlert.objects.filter(source="bot_delivery").exists())
    alert = AdminAlert.objects.get(source="bot_delivery")
    assert (alert.tenant_id, alert.code, alert.details["message_id"]) == (tenant_a.id, "bot_unreachable", message.id)
    delivery = BotDelivery.objects.get(message_id=message.id)
    assert (delivery.status, delivery.attempts) == ("failed", 4)


def test_reply_to_a_blacklisted_customer_is_suppressed(tenant_a, fake_bot, celery_worker):
    bot, _, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    conversation = _im_conversation(tenant_a, bot)
    BlacklistEntry.objects.create(tenant=tenant_a, platform="wecom", platform_user_id="wx-42")
    message, _ = message_create(conversation=conversation, sender_type="bot", content="hi")
    message_deliver_schedule(tenant_id=tenant_a.id, message_id=message.id)
    assert poll(lambda: BotDelivery.objects.filter(message_id=message.id, status="suppressed").exists())
    assert _sends(fake_bot, message.id) == []


def test_nobody_online_gets_the_keyword_rule_auto_reply_through_the_bot(tenant_a, fake_bot, celery_worker):
    bot, token, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    BotInstance.objects.filter(pk=bot.pk).update(auto_reply_rules=[{"keyword": "价格", "reply": "价格请咨询顾问"}])
    response = bot_client(token).post("/api/v1/bot/messages", inbound("m-1", content="请问价格多少"), format="json")
    incoming = response.json()["message_id"]

    assert poll(lambda: Message.objects.filter(external_id=f"autoreply:{incoming}").exists())
    reply = Message.objects.get(external_id=f"autoreply:{incoming}")
    assert (reply.sender_type, reply.content, reply.payload["source"]) == ("bot", "价格请咨询顾问", "rule")
    assert fake_bot.wait_for(lambda _: len(_sends(fake_bot, reply.id)) == 1)
    assert _sends(fake_bot, reply.id)[0].signature_ok


def test_nobody_online_non_text_message_gets_the_away_message(tenant_a, fake_bot, celery_worker):
    from anmei.conversations.services import conversation_settings_get_or_create

    bot, token, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    conversation_settings = conversation_settings_get_or_create(tenant_id=tenant_a.id)
    conversation_settings.away_message = "顾问下线了，稍后回复"
    conversation_settings.save()
    payload = inbound("m-img", type="image", content="https://img.example/1.png")
    incoming = bot_client(token).post("/api/v1/bot/messages", payload, format="json").json()["message_id"]

    assert poll(lambda: Message.objects.filter(external_id=f"autoreply:{incoming}").exists())
    reply = Message.objects.get(external_id=f"autoreply:{incoming}")
    assert (reply.content, reply.payload["source"]) == ("顾问下线了，稍后回复", "away")
    assert fake_bot.wait_for(lambda _: len(_sends(fake_bot, reply.id)) == 1)
    assert User.objects.filter(tenant=tenant_a, platform_user_id="wx-u1").count() == 1


def test_a_delivery_that_failed_for_good_shows_on_metrics(tenant_a, unused_url, celery_worker, anon, settings):
    # given a reply to an IM customer whose bot never answers, retried on a short schedule by the worker
    bot, _, _ = make_bot(tenant_a, callback_url=unused_url)
    bot_fast_retries(tenant_a, [0.2, 0.2, 0.2])
    conversation = _im_conversation(tenant_a, bot)
    message, _ = message_create(conversation=conversation, sender_type="bot", content="欢迎")
    message_deliver_schedule(tenant_id=tenant_a.id, message_id=message.id)
    assert poll(lambda: BotDelivery.objects.filter(message_id=message.id, status="failed").exists())

    # when an operator scrapes /metrics (Flower shows the task as succeeded: the job row holds the failure)
    settings.METRICS_TOKEN = "t"
    body = anon.get("/metrics", HTTP_AUTHORIZATION="Bearer t").content.decode()

    # then the failed-jobs gauge counts it under its pipeline
    from anmei.jobs.models import Job

    kind = Job.objects.get(state="failed").kind
    assert f'anmei_jobs_failed{{kind="{kind}"}} 1.0' in body
