"""The web customer's chat page in Chromium: starting again, photos, the rating, registration.

Screenshots land in var/test-artifacts/ (and a copy in $SHOTS_DIR when it is set).
"""

from __future__ import annotations

import os
import shutil

import pytest
from playwright.sync_api import expect

from anmei.conversations.models import Conversation, Message
from tests.test_console_browser import (
    chat_login,
    console_login,
    off_the_page_thread,
    open_in_console,
    waiting_conversation,
)
from tests.test_media import PNG as _TINY_PNG
from tests.test_message_uploads import PDF


def _png(width: int = 160, height: int = 120) -> bytes:
    """A small gradient picture (a 1×1 pixel shows nothing in a screenshot)."""
    import struct
    import zlib

    rows = b"".join(b"\0" + b"".join(bytes((200, 100 + x // 2, 130 + y)) for x in range(width)) for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = _png()
assert PNG[:8] == _TINY_PNG[:8]

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


def test_customer_sends_a_photo_and_the_consultant_answers_with_a_file(web_server, browser_context, shot, carol, cathy):
    from anmei.conversations.services import conversation_claim

    # given Cathy's conversation that Carol holds, open on both sides
    conversation = waiting_conversation(cathy, "想咨询一下祛斑")
    off_the_page_thread(conversation_claim, user=carol, conversation_id=conversation.id)
    chat = chat_login(browser_context(viewport={"width": 390, "height": 844}), web_server, cathy)
    console = console_login(browser_context(), web_server, carol)
    open_in_console(console, conversation, tab="mine")

    # when Cathy picks a photo with a caption in the composer
    chat.fill("#composer-input", "这是我的脸部照片")
    chat.set_input_files("#image-input", {"name": "face.png", "mimeType": "image/png", "buffer": PNG})

    # then both pages show the picture itself (loaded through its signed link) with the caption
    mine = chat.locator(".msg.customer img")
    expect(mine).to_have_count(1)
    chat.wait_for_function("document.querySelector('.msg.customer img').naturalWidth > 0")
    expect(chat.locator(".msg.customer").last).to_contain_text("这是我的脸部照片")
    seen = console.locator(".msg.customer img")
    expect(seen).to_have_count(1)
    console.wait_for_function("document.querySelector('.msg.customer img').naturalWidth > 0")

    # when Carol attaches a price list from the console
    console.fill("#composer-input", "价目表请查收")
    console.set_input_files("#attach-file", {"name": "价目表.pdf", "mimeType": "application/pdf", "buffer": PDF})

    # then Cathy gets a link to it, and the stored rows say what happened
    link = chat.locator(".msg.consultant a")
    expect(link).to_have_text("[文件] 价目表请查收")
    assert link.get_attribute("href").startswith(f"{web_server.url}/media/")
    stored = list(Message.objects.filter(conversation=conversation).values_list("sender_type", "type"))
    assert stored == [("customer", "text"), ("customer", "image"), ("consultant", "file")]
    shot(chat, "chat-photo-and-file")
    shot(console, "console-photo-and-file")


def test_consultant_sees_a_failed_delivery_to_a_wechat_customer_and_resends_it(
    web_server, browser_context, shot, tenant_a, carol, fake_bot, celery_worker
):
    from anmei.bots.models import BotDelivery, GatewaySettings
    from tests.conftest import make_user
    from tests.fixtures_bots import make_bot

    # given a WeChat customer's conversation Carol holds, a bot that fails, and no retries configured
    bot, _, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    GatewaySettings.objects.create(tenant=tenant_a, retry_countdowns=[])
    customer = make_user(tenant_a, "wecom:wx-9", source="wecom", platform_user_id="wx-9", nickname="微信用户")
    conversation = Conversation.objects.create(
        tenant=tenant_a, customer=customer, channel="wecom", bot_instance_id=bot.id, status="active", consultant=carol
    )
    fake_bot.script(bot.id, 500)
    console = console_login(browser_context(), web_server, carol)
    open_in_console(console, conversation, tab="mine")

    # when Carol replies
    console.fill("#composer-input", "您好，请问想了解哪个项目？")
    console.press("#composer-input", "Enter")

    # then the bubble says the delivery failed, with a resend button
    line = console.locator(".msg.consultant .delivery")
    expect(line).to_have_attribute("data-status", "failed")
    expect(line).to_contain_text("发送失败")
    shot(console, "console-delivery-failed")

    # when she resends (the bot is back), then it is delivered
    line.get_by_role("button", name="重新发送").click()
    expect(line).to_have_attribute("data-status", "sent")
    expect(line).to_have_text("已送达")
    assert BotDelivery.objects.get().status == "sent"
    assert [r.answered for r in fake_bot.requests(bot_id=bot.id) if r.path.endswith("/message/send")] == [500, 200]
    shot(console, "console-delivery-resent")


def test_the_rating_form_stays_hidden_after_a_reload_of_a_rated_conversation(
    web_server, browser_context, shot, carol, cathy
):
    # given Cathy rated her ended conversation
    ended_conversation(cathy, carol)
    chat = chat_login(browser_context(), web_server, cathy)
    expect(chat.locator("#rating")).to_be_visible()
    chat.click('.stars button[data-score="5"]')
    chat.click("#rating-submit")
    expect(chat.locator("#rating-msg")).to_have_text("感谢您的评价！")

    # when she reloads the page
    chat.reload()

    # then the conversation is shown ended, without the form, and she can start a new one
    expect(chat.locator("#status")).to_have_text("本次咨询已结束")
    expect(chat.locator("#new-conversation")).to_be_visible()
    expect(chat.locator("#rating")).to_be_hidden()
    shot(chat, "chat-rated-reloaded")


def test_registration_page_names_the_clinic_hides_its_slug_and_offers_a_guest_start(
    web_server, browser_context, shot, tenant_a
):
    from anmei.accounts.models import User
    from tests.conftest import PASSWORD

    tenant_a.name = "安美医美诊所"
    tenant_a.save()
    chat = browser_context(viewport={"width": 390, "height": 844}).new_page()
    chat.goto(f"{web_server.url}/chat/?tenant=alpha")

    # the clinic's name and a privacy notice, no slug to edit, no "离线" before anyone logged in
    expect(chat.locator(".topbar strong")).to_have_text("安美医美诊所 · 在线咨询")
    expect(chat.locator("#privacy")).to_contain_text("安美医美诊所")
    expect(chat.locator("#tenant-field")).to_be_hidden()
    expect(chat.locator("#conn")).to_be_hidden()

    # a weak password: Chinese, each problem once, no API field key
    chat.fill("#auth-form [name=username]", "dora")
    chat.fill("#auth-form [name=password]", "12345678")
    chat.click("#auth-submit")
    error = chat.locator("#auth-error")
    expect(error).to_contain_text("密码：")
    lines = error.inner_text().splitlines()
    assert lines and len(lines) == len(set(lines)) and all("password" not in line.lower() for line in lines)
    shot(chat, "chat-register-errors")

    # the quick start: no username to invent; a password can be set later from the chat
    chat.click("#guest-start")
    expect(chat.locator("#conn")).to_have_attribute("data-state", "online")
    expect(chat.locator("#save-account")).to_be_visible()
    shot(chat, "chat-guest")
    chat.fill("#save-account [name=username]", "dora")
    chat.fill("#save-account [name=password]", PASSWORD)
    chat.click("#save-account button[type=submit]")
    expect(chat.locator("#save-account")).to_be_hidden()
    expect(chat.locator("#conn")).to_have_attribute("data-state", "online")
    user = User.objects.get(username="dora")
    assert (user.role, user.has_usable_password()) == ("customer", True)
