"""Django admin for clinic staff: Chinese first (English selectable), the tenant's clock, Chinese names."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.test import Client

from anmei.ai.models import CannedResponse
from anmei.automation.models import AutomationStep
from anmei.conversations.models import Conversation, Message
from anmei.mcp_admin.models import MCPToolGroup
from anmei.mcp_admin.services import mcp_group_create
from anmei.stats.models import StatsSettings
from tests.conftest import PASSWORD
from tests.test_automation_dashboard import _run

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_page(web_server, browser_context, alice):
    """A 1400 x 900 browser page with alice logged in to Django admin (at its index)."""
    page = browser_context(viewport={"width": 1400, "height": 900}).new_page()
    page.goto(f"{web_server.url}/admin/login/?next=/admin/")
    page.fill("#id_username", "alpha/alice")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    return page


def _client(user, language: str | None = None) -> Client:
    client = Client()
    client.force_login(user)
    if language:
        client.cookies["django_language"] = language
    return client


def test_admin_is_chinese_by_default_with_chinese_app_names_and_english_on_request(alice):
    chinese = _client(alice).get("/admin/").content.decode()
    english = _client(alice, "en").get("/admin/").content.decode()

    assert "站点管理" in chinese and "Site administration" not in chinese
    assert "MCP 工具" in chinese and "API 密钥" in chinese
    assert ">Mcp_Admin<" not in chinese and ">Apikeys<" not in chinese
    assert "Site administration" in english


def test_admin_stats_settings_has_a_proper_name(olga):
    page = _client(olga).get("/admin/").content.decode()
    assert "统计设置" in page and "settingss" not in page


def test_admin_times_are_in_the_tenant_time_zone(alice, tenant_a):
    # given a group created at 12:51 UTC, i.e. 20:51 in Shanghai (the tenant's zone)
    StatsSettings.objects.create(tenant=tenant_a, time_zone="Asia/Shanghai")
    group, _ = mcp_group_create(tenant=tenant_a, name="dify", created_by=alice)
    MCPToolGroup.objects.filter(pk=group.pk).update(created_at=datetime(2026, 12, 6, 12, 51, tzinfo=UTC))

    page = _client(alice).get("/admin/mcp_admin/mcptoolgroup/").content.decode()

    assert "20:51" in page and "12:51" not in page and "p.m." not in page


def test_api_messages_stay_as_they_were(anon):
    response = anon.post("/api/v1/auth/login", {}, format="json")
    assert response.status_code == 400
    assert "This field is required." in response.json()["error"]["message"]


@pytest.mark.django_db(transaction=True)
def test_clinic_admin_sees_chinese_admin_in_the_browser(web_server, admin_page, alice, tenant_a):
    # given alice's tenant with an MCP group, created at 12:51 UTC (20:51 in Shanghai)
    group, _ = mcp_group_create(tenant=tenant_a, name="dify", created_by=alice)
    MCPToolGroup.objects.filter(pk=group.pk).update(created_at=datetime(2026, 12, 6, 12, 51, tzinfo=UTC))
    shots = Path("/tmp/shots-dayc")
    shots.mkdir(parents=True, exist_ok=True)

    # when she logs in to Django admin and opens the groups
    page = admin_page
    page.goto(f"{web_server.url}/admin/")
    page.screenshot(path=str(shots / "admin-index.png"), full_page=True)
    index = page.inner_text("body")
    page.goto(f"{web_server.url}/admin/mcp_admin/mcptoolgroup/")
    page.screenshot(path=str(shots / "admin-mcp-groups.png"), full_page=True)
    groups = page.inner_text("#result_list")

    # then it is Chinese, with the tenant's time
    assert "站点管理" in index and "MCP 工具" in index and "API 密钥" in index
    assert "20:51" in groups


def test_tenant_admin_adds_a_canned_response_with_word_keywords_and_no_tenant_picker(alice, tenant_a):
    client = _client(alice)
    form = client.get("/admin/ai/cannedresponse/add/").content.decode()
    body = {"shortcode": "price", "text": "价格以面诊为准", "keywords": "玻尿酸, 价格、疼不疼 价格"}

    created = client.post("/admin/ai/cannedresponse/add/", body)
    duplicate = client.post("/admin/ai/cannedresponse/add/", body)

    assert 'name="tenant"' not in form and 'name="keywords"' in form
    assert created.status_code == 302
    row = CannedResponse.objects.get()
    assert (row.tenant_id, row.shortcode, row.keywords) == (tenant_a.id, "price", ["玻尿酸", "价格", "疼不疼"])
    assert duplicate.status_code == 200 and "这个快捷码已被使用" in duplicate.content.decode()
    assert CannedResponse.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_registration_automation_dashboard_is_chinese_and_shows_errors_as_text(web_server, admin_page, tenant_a):

    # given a failed run whose error text looks like markup, at 12:51 UTC (20:51 in Shanghai)
    _run(tenant_a, "u-failed", "failed", failed_step="generate_welcome")
    AutomationStep.objects.filter(tenant=tenant_a).update(
        error="<b id=x>boom</b>", finished_at=datetime(2026, 12, 6, 12, 51, 5, tzinfo=UTC)
    )
    page = admin_page

    # when alice opens the dashboard
    page.goto(f"{web_server.url}/admin/registration-automation/")
    page.wait_for_selector("#errors td.failed")
    Path("/tmp/shots-dayc").mkdir(parents=True, exist_ok=True)
    page.screenshot(path="/tmp/shots-dayc/automation-dashboard.png", full_page=True)

    # then it speaks Chinese and the error is text, not markup
    body = page.inner_text("body")
    assert "成功率" in body and "最近错误" in body and "Success rate" not in body
    assert page.inner_text("#errors td.failed") == "<b id=x>boom</b>"
    # and its time is on the tenant's clock, like every other time the clinic sees
    assert page.inner_text("#errors tr:nth-child(2) td") == "2026-12-06 20:51:05"
    assert page.locator("#x").count() == 0


def test_admin_names_every_model_in_chinese(alice, olga):
    page = _client(olga).get("/admin/").content.decode()

    for name in ("会话", "消息", "快捷回复", "黑名单条目", "机器人实例", "后台任务", "满意度评价", "用户"):
        assert f">{name}<" in page, name
    for english in (">Conversations<", ">Messages<", ">Canned responses<", ">Blacklist entries<", ">Jobs<"):
        assert english not in page, english


@pytest.mark.django_db(transaction=True)
def test_admin_change_lists_fit_1400_px_and_chinese_messages_stay_readable(
    web_server, admin_page, carol, cathy, tenant_a
):
    # given a conversation with a long Chinese message
    conversation = Conversation.objects.create(tenant=tenant_a, customer=cathy, consultant=carol, channel="web")
    text = "您好，我想咨询一下玻尿酸填充苹果肌的效果能维持多久，术后需要注意哪些事项，价格大概是多少？" * 2
    Message.objects.create(tenant=tenant_a, conversation=conversation, sender_type="customer", content=text)
    shots = Path("/tmp/shots-dayc")
    shots.mkdir(parents=True, exist_ok=True)
    page = admin_page

    overflow = """() => [document.documentElement.scrollWidth - document.documentElement.clientWidth,
        ...[...document.querySelectorAll('#changelist .results')].map(e => e.scrollWidth - e.clientWidth)]"""
    for path in ("conversations/message", "conversations/conversation", "conversations/conversationevent",
                 "ai/cannedresponse", "jobs/job", "notifications/adminalert"):  # fmt: skip
        # when she opens the change list at 1400 px
        page.goto(f"{web_server.url}/admin/{path}/")
        page.wait_for_selector("#changelist")
        page.screenshot(path=str(shots / f"admin-{path.replace('/', '-')}.png"), full_page=True)
        # then nothing scrolls sideways, neither the page nor the table
        assert max(page.evaluate(overflow)) <= 0, path

    # and the message is a readable paragraph, not one character per line
    page.goto(f"{web_server.url}/admin/conversations/message/")
    cell = page.locator("#result_list td.field-short_content").first
    box = cell.bounding_box()
    assert box["width"] > 300 and box["height"] < 120, box
