"""One clinic day in Chromium, as its people live it (how each of them does it: README).

A web customer registers, sends a photo, is served and rates, then comes back with a new question;
a WeChat customer writes through the bot API, a reply whose delivery failed is resent from the
console and the customer is handed to a colleague with a note; a blacklisted sender never reaches
anybody; the clinic admin adds a canned response in the console, answers with it, and reads the
day in statistics, counted by the clinic's Shanghai day and hours. Everything runs for real:
daphne, a Celery worker, beat (as a process, with a short statistics interval), PostgreSQL and
Redis; the bot is the fake in tests/fakes.

Screenshots go to var/test-artifacts/ and to /tmp/shots-journey/ for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from anmei.conversations.models import Conversation, Message
from tests.conftest import client_for
from tests.fixtures_browser import ROOT
from tests.helpers import poll
from tests.test_chat_browser import PNG
from tests.test_console_browser import chat_register, console_login, conversation_item, off_the_page_thread

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=20_000)
SHOTS = "/tmp/shots-journey"
TZ = "Asia/Shanghai"  # where the clinic, its customers and their browsers are


@pytest.fixture
def shot(screenshot):
    os.makedirs(SHOTS, exist_ok=True)
    taken = []

    def take(page, name: str):
        path = screenshot(page, f"{len(taken) + 1:02d}-{name}")
        shutil.copy(path, os.path.join(SHOTS, path.name))
        taken.append(path)
        return path

    return take


@pytest.fixture
def beat(web_server, tmp_path):
    """`celery beat` as its own process on the test database (the DatabaseScheduler), statistics every 3 s."""
    env = {**web_server.env, "STATS_ROLLUP_INTERVAL_SECONDS": "3", "JOBS_SWEEP_SECONDS": "5"}
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_config", "beat", "-l", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def bot_send(server, token: str, **fields) -> dict:
    """What the bot does for an IM user's message: POST /api/v1/bot/messages over HTTP to daphne."""
    body = {"platform": "wecom", "type": "text", **fields}
    request = urllib.request.Request(
        f"{server.url}/api/v1/bot/messages",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201, 202), response.status
        return json.loads(response.read() or b"{}")


def test_a_clinic_day_from_registration_to_statistics(
    web_server,
    beat,
    browser_context,
    shot,
    tenant_a,
    alice,
    carol,
    fake_bot,
    celery_worker,
    automation_mcp_url,
):
    from anmei.accounts.models import User
    from anmei.ai.models import CannedResponse
    from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
    from anmei.blacklist.models import BlacklistInterception
    from anmei.blacklist.services import blacklist_entry_add
    from anmei.bots.models import BotDelivery, GatewaySettings
    from anmei.conversations.models import ConversationEvent
    from tests.conftest import PASSWORD, make_user
    from tests.fixtures_bots import make_bot

    tenant_a.name = "安美医美诊所"
    tenant_a.save()
    agent_config_update(config=agent_config_get_or_create(tenant_id=tenant_a.id), timeout_seconds=30)
    bot, token, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    GatewaySettings.objects.create(tenant=tenant_a, retry_countdowns=[])  # a failed send stays failed

    # Morning: Carol and Cora open the console
    cora = make_user(tenant_a, "cora", User.Role.CONSULTANT, nickname="Cora")
    console = console_login(browser_context(timezone_id=TZ), web_server, carol)
    cora_page = console_login(browser_context(timezone_id=TZ), web_server, cora)

    # A web customer registers on her phone and is welcomed
    phone = browser_context(viewport={"width": 390, "height": 844}, timezone_id=TZ)
    chat = chat_register(phone, web_server, "mei", "小美")
    expect(chat.locator(".msg.bot")).to_have_count(1)
    first = Conversation.objects.get(customer__username="mei")
    shot(chat, "customer-welcomed")

    # Her first message is a photo of her face with a caption
    chat.fill("#composer-input", "这是我的脸部照片，想祛斑")
    chat.set_input_files("#image-input", {"name": "face.png", "mimeType": "image/png", "buffer": PNG})
    expect(chat.locator(".msg.customer img")).to_have_count(1)
    chat.wait_for_function("() => document.querySelector('.msg.customer img')?.naturalWidth > 0")

    # Carol finds her in the waiting list, claims, sees the photo and answers
    console.click('[data-tab="waiting"]')
    conversation_item(console, first.id).click()
    expect(console.locator("#chat-title")).to_contain_text(f"#{first.id}")
    console.click("#btn-claim")
    expect(console.locator("#chat-status")).to_have_text("接待中")
    expect(console.locator(".msg.customer img")).to_have_count(1)
    console.wait_for_function("() => document.querySelector('.msg.customer img')?.naturalWidth > 0")
    console.fill("#composer-input", "您好小美，建议先做皮肤检测，再定祛斑方案")
    console.press("#composer-input", "Enter")
    expect(chat.locator(".msg.consultant")).to_contain_text("皮肤检测")
    expect(chat.locator("#status")).to_have_text("顾问已接入，正在为您服务")
    shot(console, "consultant-sees-photo")
    shot(chat, "customer-answered")

    # Carol ends the consultation; the customer rates it five stars
    console.click("#btn-end")
    expect(console.locator("#chat-status")).to_have_text("已结束")
    expect(chat.locator("#status")).to_have_text("本次咨询已结束")
    chat.click('.stars button[data-score="5"]')
    chat.fill("#rating-comment", "很耐心")
    chat.click("#rating-submit")
    expect(chat.locator("#rating-msg")).to_have_text("感谢您的评价！")
    shot(chat, "customer-rated")

    # A WeChat customer writes through the bot; the bot is down when Carol answers
    bot_send(web_server, token, user_id="wx-lin", nickname="林女士", message_id="m-1", content="请问水光针多少钱？")
    wechat = Conversation.objects.get(customer__platform_user_id="wx-lin")
    assert (wechat.channel, wechat.status) == ("wecom", "waiting")
    # (her welcome goes out through the bot first: let it be delivered before the bot breaks)
    welcome = f"welcome:{wechat.customer_id}"
    assert poll(lambda: BotDelivery.objects.filter(message__external_id=welcome, status="sent").exists(), timeout=60)
    console.click('[data-tab="waiting"]')
    conversation_item(console, wechat.id).click()
    console.click("#btn-claim")
    expect(console.locator("#chat-status")).to_have_text("接待中")
    fake_bot.script(bot.id, 500)
    console.fill("#composer-input", "水光针单次 1280 元，首次体验价 980 元")
    console.press("#composer-input", "Enter")
    line = console.locator(".msg.consultant .delivery")
    expect(line).to_have_attribute("data-status", "failed")
    expect(line).to_contain_text("发送失败")
    shot(console, "wechat-delivery-failed")

    # The bot is back: Carol resends from the bubble and it is delivered
    line.get_by_role("button", name="重新发送").click()
    expect(line).to_have_attribute("data-status", "sent")
    expect(line).to_have_text("已送达")
    reply = Message.objects.get(conversation=wechat, sender_type="consultant")
    assert BotDelivery.objects.get(message=reply).status == "sent"
    sends = [r for r in fake_bot.requests(bot_id=bot.id) if r.path.endswith("/message/send")]
    assert [r.answered for r in sends][-2:] == [500, 200]
    shot(console, "wechat-delivery-resent")

    # Carol hands Lin over to Cora with a note; Cora reads it in her invitation and accepts
    console.click("#btn-transfer")
    console.select_option("#transfer-target", label="Cora (cora)")
    console.fill("#transfer-note", "客户想要 980 体验价，报价已发")
    shot(console, "transfer-with-note")
    console.click("#transfer-ok")
    expect(console.locator("#chat-status")).to_have_text("转接中")
    invite = cora_page.locator(".toast.transfer")
    expect(invite.locator(".toast-note")).to_have_text("备注：客户想要 980 体验价，报价已发")
    shot(cora_page, "transfer-note-received")
    invite.get_by_role("button", name="接受转接").click()
    expect(cora_page.locator("#chat-status")).to_have_text("接待中")
    expect(cora_page.locator(".msg.consultant")).to_contain_text("980")  # she sees what Carol said
    event = ConversationEvent.objects.get(conversation=wechat, action="transfer")
    assert event.details["note"] == "客户想要 980 体验价，报价已发"

    # A spammer the clinic blacklisted writes: nobody sees it, nothing is opened for it
    off_the_page_thread(
        blacklist_entry_add, tenant_id=tenant_a.id, actor=alice, platform="wecom", user_id="wx-spam", reason="发广告"
    )
    conversations_before = Conversation.objects.count()
    bot_send(web_server, token, user_id="wx-spam", nickname="推广号", message_id="m-spam", content="加微信领优惠")
    assert BlacklistInterception.objects.filter(tenant=tenant_a, platform_user_id="wx-spam").exists()
    assert Conversation.objects.count() == conversations_before
    console.reload()
    expect(console.locator("#conn")).to_have_attribute("data-state", "online")
    console.click('[data-tab="all"]')
    expect(conversation_item(console, wechat.id)).to_be_visible()
    expect(console.locator("#conv-list")).not_to_contain_text("推广号")
    console.click('[data-tab="waiting"]')
    expect(console.locator('[data-count="waiting"]')).to_have_text("0")
    shot(console, "blacklisted-never-appears")

    # The web customer comes back with a new question: a new consultation, welcomed and waiting
    chat.reload()
    expect(chat.locator("#new-conversation")).to_be_visible()
    expect(chat.locator("#rating")).to_be_hidden()  # she rated already
    chat.click("#new-conversation")
    expect(chat.locator("#status")).to_have_text("正在为您安排顾问，请稍候")
    chat.fill("#composer-input", "皮肤检测需要预约吗？")
    chat.press("#composer-input", "Enter")
    expect(chat.locator(".msg.customer")).to_contain_text("皮肤检测需要预约吗")
    second = Conversation.objects.exclude(pk=first.id).get(customer__username="mei")
    assert second.status == "waiting"
    expect(console.locator('[data-count="waiting"]')).to_have_text("1")
    expect(conversation_item(console, second.id)).to_be_visible()
    shot(chat, "customer-asks-again")
    shot(console, "second-question-waiting")

    # The clinic admin adds a canned response in the console and answers the new question with it
    admin_console = console_login(browser_context(timezone_id=TZ), web_server, alice)
    admin_console.click("#canned-manage")
    admin_console.fill("#canned-shortcode", "skin")
    admin_console.fill("#canned-text", "皮肤检测需提前一天预约，免费，约 30 分钟。")
    for word in ("皮肤检测", "预约"):
        admin_console.fill("#canned-keyword-input", word)
        admin_console.press("#canned-keyword-input", "Enter")
    admin_console.click("#canned-save")
    expect(admin_console.locator('.canned-item[data-shortcode="skin"] .tag')).to_have_text(["皮肤检测", "预约"])
    shot(admin_console, "admin-adds-canned-response")
    admin_console.click("#canned-close")
    stored = CannedResponse.objects.get(tenant_id=tenant_a.id)
    assert (stored.shortcode, stored.keywords) == ("skin", ["皮肤检测", "预约"])
    admin_console.click('[data-tab="waiting"]')
    conversation_item(admin_console, second.id).click()
    admin_console.click("#btn-claim")
    expect(admin_console.locator("#chat-status")).to_have_text("接待中")
    admin_console.type("#composer-input", "/sk")
    expect(admin_console.locator("#canned li")).to_have_text(["/skin 皮肤检测需提前一天预约，免费，约 30 分钟。"])
    admin_console.press("#composer-input", "Enter")
    expect(admin_console.locator("#composer-input")).to_have_value("皮肤检测需提前一天预约，免费，约 30 分钟。")
    admin_console.press("#composer-input", "Enter")
    expect(chat.locator(".msg.consultant")).to_contain_text("皮肤检测需提前一天预约")
    shot(chat, "customer-gets-canned-answer")

    # Evening: the clinic admin reads today (the clinic's Shanghai day) in statistics
    today = datetime.now(ZoneInfo(TZ)).date().isoformat()
    admin = browser_context(viewport={"width": 1400, "height": 1800}, timezone_id=TZ).new_page()
    admin.goto(f"{web_server.url}/admin/login/?next=/admin/stats/")
    admin.fill("[name=username]", f"{tenant_a.slug}/{alice.username}")
    admin.fill("[name=password]", PASSWORD)
    admin.click("[type=submit]")

    def figures() -> dict:
        admin.goto(f"{web_server.url}/admin/stats/?from={today}&to={today}")
        admin.wait_for_selector('#stats-root[data-ready="1"]')
        ids = ("customers-total", "conversations-total", "csat", "csat-count")
        more = admin.eval_on_selector_all("#more-table tr", "rows => rows.map(r => r.innerText)")
        return {
            **{name: admin.text_content(f"#{name}") for name in ids},
            "transfers": next((row for row in more if row.startswith("顾问间转接")), None),
        }

    # beat rolls the day up every 3 s: wait for the rollup that has seen the whole day so far —
    # two customers (the blacklisted sender is none), three conversations (mei twice, Lin once),
    # all valid, mei's five stars, and one hand-off between consultants
    expected = {
        "customers-total": "2",
        "conversations-total": "3 / 3",
        "csat": "5 / 5",
        "csat-count": "1 条评价",
        "transfers": "顾问间转接\t1",
    }
    seen = {}
    for _ in range(30):
        seen = figures()
        if seen == expected:
            break
        admin.wait_for_timeout(1000)
    assert seen == expected
    # the busy hours are the clinic's local hours (Monday 23:00 in Shanghai is 15:00 UTC)
    shanghai = ZoneInfo(TZ)
    starts = {
        f"周{'一二三四五六日'[moment.astimezone(shanghai).weekday()]} {moment.astimezone(shanghai).hour}:00"
        for moment in Conversation.objects.values_list("created_at", flat=True)
    }
    busy = admin.eval_on_selector_all(
        "#heatmap td", "cells => cells.map(c => c.title).filter(t => !t.endsWith('— 0')).map(t => t.split(' — ')[0])"
    )
    assert set(busy) == starts, (busy, starts)
    shot(admin, "admin-statistics-today")

    # each figure is credited to who did it: Carol claimed mei's first conversation and Lin's (then
    # handed Lin to Cora), so the consultant filter gives her two; Cora accepted one hand-off, which
    # credits her handling time, not a conversation (docs/metrics.md)
    def credited(user) -> dict:
        body = (
            client_for(alice).get("/api/v1/stats/overview", {"from": today, "to": today, "consultant": user.id}).json()
        )
        return {"conversations": body["conversations"]["total"], "consultants": [c["id"] for c in body["consultants"]]}

    assert credited(carol) == {"conversations": 2, "consultants": [carol.id]}
    assert credited(cora)["conversations"] == 0
    admin.goto(f"{web_server.url}/admin/stats/?from={today}&to={today}&consultant={carol.id}")
    admin.wait_for_selector('#stats-root[data-ready="1"]')
    expect(admin.locator("#conversations-total")).to_have_text("2 / 2")
    shot(admin, "admin-statistics-carol")

    # and the stored day matches what everyone saw
    assert list(Message.objects.filter(conversation=first).values_list("sender_type", "type")) == [
        ("bot", "text"),
        ("customer", "image"),
        ("consultant", "text"),
    ]
    assert not Message.objects.filter(content="加微信领优惠", is_blocked=False).exists()
