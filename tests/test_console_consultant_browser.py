"""The consultant's day in the console (Chromium, live server): notifications, status that follows
the conversation, canned responses, transfer notes, the phone layout.

Run alone with `-m browser`. Screenshots land in var/test-artifacts/.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from anmei.accounts.models import User
from anmei.conversations.models import Conversation
from tests.conftest import make_user
from tests.test_console_browser import (
    console_login,
    conversation_item,
    off_the_page_thread,
    open_in_console,
    waiting_conversation,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=15_000)

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def cora(tenant_a) -> User:
    return make_user(tenant_a, "cora", User.Role.CONSULTANT, nickname="Cora")


def _push(user: User, event: dict) -> None:
    from anmei.common import realtime

    off_the_page_thread(realtime.broadcast_to_user, tenant_id=user.tenant_id, user_id=user.id, event=event)


def _new_customer_event(conversation: Conversation) -> dict:
    return {
        "type": "new_customer",
        "title": "新客户注册",
        "message": "新客户已注册，等待接入",
        "customer_id": conversation.customer_id,
        "conversation_id": conversation.id,
        "timestamp": "2026-12-07T10:00:00+00:00",
        "action": "claim_customer",
    }


def _overlaps(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def _toasts_leave_the_actions_free(page) -> None:
    for selector in ("#btn-claim", "#btn-end", "#composer", ".side-pane"):
        button = page.locator(selector).bounding_box()
        if button is None:  # not offered in this status
            continue
        for index in range(page.locator(".toast:visible, .toast-more").count()):
            box = page.locator(".toast:visible, .toast-more").nth(index).bounding_box()
            assert not _overlaps(button, box), (selector, button, box)


@pytest.mark.parametrize("viewport", [None, PHONE], ids=["desktop", "phone"])
def test_new_customer_toasts_name_the_customer_fold_time_out_and_leave_the_actions_free(
    web_server, browser_context, screenshot, tenant_a, carol, cathy, viewport
):
    # given Carol's console with Cathy's waiting conversation open, and five customers arriving
    first = waiting_conversation(cathy, "有人在吗")
    arriving = []
    for index, (nickname, channel) in enumerate(
        [("小王", "wechat"), ("李女士", "web"), ("张三", "wecom"), ("Ann", "web"), ("赵六", "wechat")]
    ):
        customer = make_user(tenant_a, f"new{index}", nickname=nickname)
        arriving.append(Conversation.objects.create(tenant=tenant_a, customer=customer, channel=channel))
    context = browser_context(**({"viewport": viewport} if viewport else {}))
    console = console_login(context, web_server, carol)
    console.clock.install()
    open_in_console(console, first, tab="waiting")

    # when each new customer is announced (the first one twice)
    _push(carol, _new_customer_event(arriving[0]))
    expect(console.locator(".toast.new-customer")).to_have_count(1)
    _push(carol, _new_customer_event(arriving[0]))
    for conversation in arriving[1:]:
        _push(carol, _new_customer_event(conversation))

    # then there is one toast per customer saying who and from where, newest first, folded past three
    toasts = console.locator(".toast.new-customer")
    expect(toasts).to_have_count(5)
    expect(toasts.first).to_contain_text("新客户 赵六 · 来自微信，等待接入")
    expect(toasts.nth(2)).to_contain_text("张三 · 来自企业微信")
    expect(console.locator(".toast.new-customer:visible")).to_have_count(3)
    expect(console.locator(".toast-more")).to_contain_text("还有 2 条通知")
    screenshot(console, "toasts")
    # and none covers the header's actions, so a click on 接入 reaches it
    _toasts_leave_the_actions_free(console)
    console.locator("#btn-claim").click(timeout=5000)
    expect(console.locator("#chat-status")).to_have_text("接待中")
    _toasts_leave_the_actions_free(console)

    expect(console.locator(".toast").first).to_have_text(re.compile("^已接入会话"))

    # when Carol presses Esc twice, the two newest toasts close
    console.keyboard.press("Escape")
    expect(console.locator(".toast").first).to_contain_text("赵六")
    console.keyboard.press("Escape")
    expect(toasts).to_have_count(4)
    expect(toasts.first).to_contain_text("Ann")

    # when the toasts' time is up, they are gone, and the waiting list keeps a badge on each
    console.clock.fast_forward(25_000)
    expect(console.locator(".toast")).to_have_count(0)
    expect(console.locator(".toast-more")).to_have_count(0)
    if viewport:  # one pane at a time: back to the list
        console.click("#back-to-list")
    console.click('[data-tab="waiting"]')
    for conversation in arriving:
        expect(conversation_item(console, conversation.id).locator(".fresh")).to_have_text("新")
    expect(console.locator('[data-count="waiting"]')).to_have_text("5")
    screenshot(console, "toasts-expired-badges")

    # when Carol opens one, its badge clears
    conversation_item(console, arriving[1].id).click()
    expect(conversation_item(console, arriving[1].id).locator(".fresh")).to_have_count(0)


def test_a_colleagues_accept_and_end_update_the_first_consultants_header_and_list(
    web_server, browser_context, screenshot, carol, cora, cathy
):
    from anmei.conversations.services import (
        conversation_accept,
        conversation_claim,
        conversation_end,
        conversation_transfer,
    )

    # given Carol's active conversation with Cathy, open in her console
    conversation = waiting_conversation(cathy, "我想做水光针")
    off_the_page_thread(conversation_claim, user=carol, conversation_id=conversation.id)
    console = console_login(browser_context(), web_server, carol)
    open_in_console(console, conversation, tab="all")
    expect(console.locator("#chat-status")).to_have_text("接待中")

    # when she has transferred it to Cora, and Cora accepts and ends it on her own screen
    off_the_page_thread(conversation_transfer, user=carol, conversation_id=conversation.id, to_consultant_id=cora.id)
    expect(console.locator("#chat-status")).to_have_text("转接中")
    off_the_page_thread(conversation_accept, user=cora, conversation_id=conversation.id)
    expect(console.locator("#composer-input")).to_be_disabled()
    off_the_page_thread(conversation_end, user=cora, conversation_id=conversation.id)

    # then Carol's header, list item and customer panel follow to 已结束
    expect(console.locator("#chat-status")).to_have_text("已结束")
    expect(conversation_item(console, conversation.id).locator(".badge")).to_have_text("已结束")
    expect(console.locator("#customer-convs li.current .badge")).to_have_text("已结束")
    expect(console.locator("#btn-end")).to_be_hidden()
    expect(console.locator(".system-event").last).to_have_text(re.compile("^Cora 结束了会话"))
    screenshot(console, "colleague-ended")


def test_slash_without_a_match_sends_nothing_and_a_consultant_manages_canned_responses(
    web_server, browser_context, screenshot, carol, cathy
):
    from anmei.ai.models import CannedResponse
    from anmei.conversations.services import conversation_claim

    # given Carol's active conversation and no canned responses yet
    conversation = waiting_conversation(cathy, "请问热玛吉多少钱")
    off_the_page_thread(conversation_claim, user=carol, conversation_id=conversation.id)
    console = console_login(browser_context(), web_server, carol)
    open_in_console(console, conversation, tab="mine")

    # when she types / and presses Enter
    console.type("#composer-input", "/")
    expect(console.locator("#canned li")).to_have_text(["没有匹配的快捷回复（Enter 不会发送）"])
    console.press("#composer-input", "Enter")

    # then nothing is sent and the "/" stays in the composer
    expect(console.locator("#composer-input")).to_have_value("/")
    assert conversation.messages.count() == 1
    console.press("#composer-input", "Escape")
    expect(console.locator("#canned")).to_be_hidden()
    console.fill("#composer-input", "")

    # when she adds one in the console, keywords typed as tags
    console.click("#canned-manage")
    expect(console.locator("#canned-admin-list")).to_have_text("还没有快捷回复")
    console.fill("#canned-shortcode", "price")
    console.fill("#canned-text", "热玛吉价格需面诊后确定，可先为您预约免费面诊。")
    for word in ("价格", "多少钱", "价格"):
        console.fill("#canned-keyword-input", word)
        console.press("#canned-keyword-input", "Enter")
    expect(console.locator("#canned-tags .tag")).to_have_text(["价格×", "多少钱×"])
    screenshot(console, "canned-manager")
    console.click("#canned-save")

    # then it is stored with those keywords and listed
    item = console.locator('.canned-item[data-shortcode="price"]')
    expect(item).to_contain_text("/price")
    expect(item.locator(".tag")).to_have_text(["价格", "多少钱"])
    stored = CannedResponse.objects.get(tenant_id=carol.tenant_id)
    assert (stored.shortcode, stored.keywords) == ("price", ["价格", "多少钱"])

    # when she edits it: one keyword removed, one added with a comma
    item.locator(".canned-edit").click()
    expect(console.locator("#canned-shortcode")).to_have_value("price")
    console.locator('#canned-tags .tag[data-keyword="多少钱"] .tag-remove').click()
    console.fill("#canned-keyword-input", "费用")
    console.press("#canned-keyword-input", ",")
    console.click("#canned-save")
    expect(item.locator(".tag")).to_have_text(["价格", "费用"])
    stored.refresh_from_db()
    assert stored.keywords == ["价格", "费用"]

    # and a taken shortcode is refused in words, nothing stored
    console.fill("#canned-shortcode", "price")
    console.fill("#canned-text", "重复")
    console.click("#canned-save")
    expect(console.locator("#canned-error")).to_have_text("快捷码 /price 已存在")
    assert CannedResponse.objects.filter(tenant_id=carol.tenant_id).count() == 1
    console.click("#canned-close")

    # then / finds it at once and Enter puts its text in the composer
    console.type("#composer-input", "/pr")
    expect(console.locator("#canned li")).to_have_text(["/price 热玛吉价格需面诊后确定，可先为您预约免费面诊。"])
    console.press("#composer-input", "Enter")
    expect(console.locator("#composer-input")).to_have_value("热玛吉价格需面诊后确定，可先为您预约免费面诊。")
    assert conversation.messages.count() == 1

    # when she deletes it (two clicks), it is gone
    console.click("#canned-manage")
    item.locator(".canned-delete").click()
    expect(item.locator(".canned-delete")).to_have_text("确认删除")
    item.locator(".canned-delete").click()
    expect(console.locator("#canned-admin-list")).to_have_text("还没有快捷回复")
    assert not CannedResponse.objects.filter(tenant_id=carol.tenant_id).exists()


def test_transfer_dialog_shows_display_names_and_the_receiver_sees_the_note(
    web_server, browser_context, screenshot, tenant_a, carol, cora, cathy
):
    from anmei.conversations.models import ConversationEvent
    from anmei.conversations.services import conversation_claim

    # given Carol's active conversation, and Cora and Cody (no display name) online
    make_user(tenant_a, "cody", User.Role.CONSULTANT)
    conversation = waiting_conversation(cathy, "想了解热玛吉")
    off_the_page_thread(conversation_claim, user=carol, conversation_id=conversation.id)
    cora_page = console_login(browser_context(), web_server, cora)
    cody = User.objects.get(username="cody")
    cody_page = console_login(browser_context(), web_server, cody)
    console = console_login(browser_context(), web_server, carol)
    open_in_console(console, conversation, tab="mine")

    # when Carol opens the transfer dialog
    console.click("#btn-transfer")

    # then it lists her online colleagues by display name, and takes an optional note
    expect(console.locator("#transfer-target option")).to_have_text(["Cora (cora)", "cody"])
    console.select_option("#transfer-target", label="Cora (cora)")
    console.fill("#transfer-note", "客户关心热玛吉价格，已发报价单")
    screenshot(console, "transfer-dialog")
    console.click("#transfer-ok")
    expect(console.locator("#chat-status")).to_have_text("转接中")

    # then Cora's toast says who hands it over and the note; the timeline keeps the note
    invite = cora_page.locator(".toast.transfer")
    expect(invite).to_contain_text(f"Carol 将会话 #{conversation.id} 转接给您")
    expect(invite.locator(".toast-note")).to_have_text("备注：客户关心热玛吉价格，已发报价单")
    screenshot(cora_page, "transfer-note-toast")
    invite.get_by_role("button", name="接受转接").click()
    expect(cora_page.locator("#chat-status")).to_have_text("接待中")
    expect(cora_page.locator(".system-event", has_text="转接给")).to_have_text(
        re.compile("^Carol 将会话转接给 您（备注：客户关心热玛吉价格，已发报价单）")
    )
    # and Cody, not the receiver, got no invitation
    expect(cody_page.locator(".toast.transfer")).to_have_count(0)
    event = ConversationEvent.objects.get(conversation=conversation, action="transfer")
    assert event.details["note"] == "客户关心热玛吉价格，已发报价单"


def _no_sideways_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def test_the_console_works_on_a_phone_one_pane_at_a_time(web_server, browser_context, screenshot, carol, cathy):
    # given a waiting conversation and Carol's console on a 390×844 phone
    conversation = waiting_conversation(cathy, "手机上能看到吗？")
    console = console_login(browser_context(viewport=PHONE, is_mobile=True, has_touch=True), web_server, carol)

    # then the list fills the screen, without the conversation or the panel beside it
    console.click('[data-tab="waiting"]')
    expect(conversation_item(console, conversation.id)).to_be_visible()
    expect(console.locator(".chat-pane")).to_be_hidden()
    expect(console.locator(".side-pane")).to_be_hidden()
    _no_sideways_scroll(console)
    screenshot(console, "phone-list")

    # when she taps the conversation, it replaces the list; she claims and replies
    conversation_item(console, conversation.id).tap()
    expect(console.locator("#chat-title")).to_contain_text(f"#{conversation.id}")
    expect(console.locator(".list-pane")).to_be_hidden()
    console.locator("#btn-claim").tap()
    expect(console.locator("#chat-status")).to_have_text("接待中")
    console.fill("#composer-input", "能看到，请问想了解哪个项目？")
    console.locator("#send").tap()
    expect(console.locator(".msg.consultant .body")).to_have_text(["能看到，请问想了解哪个项目？"])
    assert conversation.messages.filter(sender_type="consultant").count() == 1
    for selector in ("#btn-transfer", "#btn-end", "#send", "#composer-input"):
        box = console.locator(selector).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], selector
    _no_sideways_scroll(console)
    screenshot(console, "phone-chat")

    # when she opens the customer panel, it replaces the conversation; back returns to it
    console.locator("#show-panel").tap()
    expect(console.locator("#customer-info")).to_contain_text("Cathy")
    expect(console.locator(".chat-pane")).to_be_hidden()
    _no_sideways_scroll(console)
    screenshot(console, "phone-panel")
    console.locator("#back-to-chat").tap()
    expect(console.locator("#composer-input")).to_be_visible()

    # and back to the list, where the conversation now shows as hers
    console.locator("#back-to-list").tap()
    console.click('[data-tab="mine"]')
    expect(conversation_item(console, conversation.id).locator(".badge")).to_have_text("接待中")
    # and the canned-response manager fits the screen too
    console.click("#canned-manage")
    expect(console.locator("#canned-dialog")).to_be_visible()
    box = console.locator("#canned-dialog").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    screenshot(console, "phone-canned")
