"""IM customers: the welcome also goes out through the customer's bot instance, once."""

from __future__ import annotations

import pytest

from anmei.automation.models import AutomationRun
from anmei.conversations.models import Conversation, Message
from tests.fixtures_automation import wait_for
from tests.fixtures_bots import SEND_PATH, bot_client, inbound, make_bot

pytestmark = pytest.mark.django_db(transaction=True)


def test_im_customer_gets_the_welcome_through_their_bot_once(tenant_a, celery_worker, fake_bot, automation_mcp_url):
    bot, token, _secret = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)

    response = bot_client(token).post("/api/v1/bot/messages", inbound("m-1", user_id="wx-77"), format="json")
    assert response.status_code == 202, response.content
    run = wait_for(lambda: AutomationRun.objects.exclude(status="running").first(), timeout=20)

    assert run.status == "succeeded" and run.customer.source == "wecom"
    conversation = Conversation.objects.get(customer=run.customer)  # the bot's conversation is the default one
    assert conversation.is_default and conversation.bot_instance_id == bot.id
    welcome = Message.objects.get(external_id=f"welcome:{run.customer_id}")
    assert welcome.conversation_id == conversation.id and welcome.content.startswith("小美，")

    def welcome_sends(received):
        return [
            r
            for r in received
            if r.path == SEND_PATH
            and {k.lower(): v for k, v in r.headers.items()}.get("x-anmei-message-id") == str(welcome.id)
        ]

    assert fake_bot.wait_for(welcome_sends)
    (send,) = welcome_sends(fake_bot.requests(bot_id=bot.id))
    assert send.signature_ok and send.body["content"] == welcome.content and send.body["user_id"] == "wx-77"
