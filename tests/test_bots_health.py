"""Bot liveness on Anmei's side: heartbeats, one stale alert per silence episode, status in the console."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from anmei.bots.models import BotInstance
from anmei.bots.services import bot_stale_sweep
from anmei.conversations.models import Conversation
from anmei.notifications.models import AdminAlert
from tests.conftest import make_user
from tests.fixtures_bots import bot_client, make_bot

pytestmark = pytest.mark.usefixtures("fast_hashing")


def _silent_since(bot, seconds: float):
    BotInstance.objects.filter(pk=bot.pk).update(last_heartbeat_at=timezone.now() - timedelta(seconds=seconds))


def test_heartbeat_needs_the_bot_token_and_records_status(tenant_a, anon):
    bot, token, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:6196")
    assert anon.post("/api/v1/bot/heartbeat", {}, format="json").status_code == 401
    answer = bot_client(token).post("/api/v1/bot/heartbeat", {"status": "ok", "queued_reports": 2}, format="json")
    assert answer.status_code == 200
    bot.refresh_from_db()
    assert bot.last_heartbeat_at is not None and bot.last_reported_status["queued_reports"] == 2
    assert not bot.is_stale


def test_one_stale_alert_per_silence_episode(tenant_a, settings):
    settings.BOT_STALE_AFTER_SECONDS = 60
    bot, token, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:6196")
    assert bot_stale_sweep() == 0  # never connected: nothing to be stale from
    _silent_since(bot, 30)
    assert bot_stale_sweep() == 0
    _silent_since(bot, 120)
    assert bot_stale_sweep() == 1
    assert bot_stale_sweep() == 0  # the same silence: no second alert
    (alert,) = AdminAlert.objects.filter(code="bot_stale")
    assert alert.tenant_id == tenant_a.id and alert.details["bot_id"] == bot.id
    # a heartbeat ends the episode; the next silence is a new one
    bot_client(token).post("/api/v1/bot/heartbeat", {}, format="json")
    assert bot_stale_sweep() == 0
    _silent_since(bot, 300)
    assert bot_stale_sweep() == 1
    assert AdminAlert.objects.filter(code="bot_stale").count() == 2


def test_console_customer_panel_shows_the_bot_status(tenant_a, carol, as_user, settings):
    settings.BOT_STALE_AFTER_SECONDS = 60
    bot, _, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:6196")
    customer = make_user(tenant_a, "wecom:wx-7", source="wecom", platform_user_id="wx-7")
    Conversation.objects.create(tenant=tenant_a, customer=customer, channel="wecom", bot_instance_id=bot.id)
    _silent_since(bot, 10)
    profile = as_user(carol).get(f"/api/v1/console/customers/{customer.id}").json()
    assert profile["bot"]["name"] == "astrbot-1" and profile["bot"]["is_stale"] is False
    _silent_since(bot, 120)
    assert as_user(carol).get(f"/api/v1/console/customers/{customer.id}").json()["bot"]["is_stale"] is True
    web = make_user(tenant_a, "webby")
    assert as_user(carol).get(f"/api/v1/console/customers/{web.id}").json()["bot"] is None
