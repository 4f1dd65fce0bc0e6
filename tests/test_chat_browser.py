"""The web customer's chat page in Chromium: starting again, photos, the rating, registration.

Screenshots land in var/test-artifacts/ (and a copy in $SHOTS_DIR when it is set).
"""

from __future__ import annotations

import os
import shutil

import pytest
from playwright.sync_api import expect

from anmei.conversations.models import Conversation, Message
from tests.test_console_browser import chat_login, off_the_page_thread, waiting_conversation

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=15_000)


@pytest.fixture
def shot(screenshot):
    def take(page, name: str):
        path = screenshot(page, name)
        if os.environ.get("SHOTS_DIR"):
            shutil.copy(path, os.path.join(os.environ["SHOTS_DIR"], path.name))
        return path

    return take


def ended_conversation(customer, consultant) -> Conversation:
    from anmei.conversations.services import conversation_claim, conversation_end

    conversation = waiting_conversation(customer, "第一次咨询")
    off_the_page_thread(conversation_claim, user=consultant, conversation_id=conversation.id)
    off_the_page_thread(conversation_end, user=consultant, conversation_id=conversation.id)
    return conversation


def test_returning_customer_starts_a_new_consultation_and_is_welcomed(
    web_server, browser_context, shot, carol, cathy, celery_worker
):
    # given Cathy's first conversation, ended by Carol
    first = ended_conversation(cathy, carol)

    # when she comes back, the ended conversation offers a way forward
    chat = chat_login(browser_context(), web_server, cathy)
    expect(chat.locator("#status")).to_have_text("本次咨询已结束")
    expect(chat.locator("#new-conversation")).to_be_visible()
    shot(chat, "chat-ended-restart")
    chat.click("#new-conversation")

    # then a new waiting conversation is shown, the welcome arrives, and she can write at once
    expect(chat.locator("#status")).to_have_text("正在为您安排顾问，请稍候")
    expect(chat.locator("#new-conversation")).to_be_hidden()
    expect(chat.locator(".msg.bot")).to_have_count(1)
    chat.fill("#composer-input", "我又想咨询一下")
    chat.press("#composer-input", "Enter")
    expect(chat.locator(".msg.customer")).to_contain_text("我又想咨询一下")
    second = Conversation.objects.exclude(pk=first.id).get(customer=cathy)
    assert second.status == "waiting"
    # (the welcome, her message; the away message may follow: nobody is on the console)
    assert list(second.messages.values_list("sender_type", flat=True))[:2] == ["bot", "customer"]
    assert second.messages.first().payload["kind"] == "welcome"
    assert Message.objects.filter(conversation=first).count() == 1
    shot(chat, "chat-new-conversation")
