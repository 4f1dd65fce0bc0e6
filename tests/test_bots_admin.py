"""Django admin for bots and the blacklist: pages render, tenant scoping, credentials shown once, stale flag."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from anmei.blacklist.models import BlacklistChange, BlacklistEntry
from anmei.bots.models import BotInstance
from anmei.common.crypto import hash_token
from tests.fixtures_bots import make_bot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_hashing")]

PAGES = [
    "bots/botinstance",
    "bots/gatewaysettings",
    "bots/botdelivery",
    "blacklist/blacklistentry",
    "blacklist/blacklistchange",
    "blacklist/blacklistbotcursor",
    "blacklist/blacklistinterception",
    "blacklist/interceptionreport",
]


def _admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("page", PAGES)
def test_changelists_render_for_operator_and_tenant_admin(olga, alice, tenant_a, page):
    make_bot(tenant_a, callback_url="http://127.0.0.1:9")
    for user in (olga, alice):
        assert _admin_client(user).get(f"/admin/{page}/").status_code == 200


def test_tenant_admin_sees_only_their_bots_and_stale_ones_are_flagged(alice, tenant_a, tenant_b):
    mine, _, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:9", name="mine")
    make_bot(tenant_b, callback_url="http://127.0.0.1:9", name="theirs")
    BotInstance.objects.filter(pk=mine.pk).update(last_heartbeat_at=timezone.now() - timedelta(hours=1))
    client = _admin_client(alice)
    page = client.get("/admin/bots/botinstance/").content.decode()
    assert "mine" in page and "theirs" not in page
    stale = client.get("/admin/bots/botinstance/?stale=yes").content.decode()
    alive = client.get("/admin/bots/botinstance/?stale=no").content.decode()
    assert "mine" in stale and "mine" not in alive


def test_adding_a_bot_in_admin_shows_the_token_once_and_stores_its_hash(alice, tenant_a):
    client = _admin_client(alice)
    response = client.post(
        "/admin/bots/botinstance/add/",
        {
            "tenant": tenant_a.id,
            "name": "wecom-admin",
            "platform": "wecom",
            "callback_url": "http://bot.test",
            "status": "active",
            "config_version": 1,
            "away_message": "",
            "auto_reply_rules": "[]",
            "last_reported_status": "{}",
        },
        follow=True,
    )
    assert response.status_code == 200
    token = re.search(r"(bot_[\w-]+)", response.content.decode()).group(1)
    bot = BotInstance.objects.get(name="wecom-admin")
    assert bot.tenant_id == tenant_a.id and bot.token_hash == hash_token(token)
    assert token not in client.get(f"/admin/bots/botinstance/{bot.id}/change/").content.decode()


def test_a_bot_added_in_admin_is_created_like_one_from_the_api(alice, tenant_a):
    from anmei.blacklist.models import BlacklistBotCursor
    from anmei.blacklist.services import blacklist_entry_add

    # given tenant A's blacklist is at version 1
    blacklist_entry_add(tenant_id=tenant_a.id, actor=None, platform="qq", user_id="spammer")

    # when alice adds a disabled bot with an away message and a rule in admin
    response = _admin_client(alice).post(
        "/admin/bots/botinstance/add/",
        {
            "tenant": tenant_a.id,
            "name": "qq-admin",
            "platform": "qq",
            "callback_url": "http://bot.test",
            "status": "disabled",
            "config_version": 1,
            "away_message": "稍后回复",
            "auto_reply_rules": '[{"keyword": "价格", "reply": "请咨询顾问"}]',
            "last_reported_status": "{}",
        },
    )

    # then the bot keeps the form's fields and its push cursor starts at the tenant's version
    assert response.status_code == 302
    bot = BotInstance.objects.get(name="qq-admin")
    assert (bot.tenant_id, bot.status, bot.away_message) == (tenant_a.id, "disabled", "稍后回复")
    assert bot.auto_reply_rules == [{"keyword": "价格", "reply": "请咨询顾问"}]
    assert BlacklistBotCursor.objects.get(bot=bot).acknowledged_version == 1


def test_rotate_action_replaces_the_token(alice, tenant_a):
    bot, _, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:9")
    old_hash = bot.token_hash
    response = _admin_client(alice).post(
        "/admin/bots/botinstance/", {"action": "rotate_token", "_selected_action": [bot.id]}, follow=True
    )
    assert response.status_code == 200
    bot.refresh_from_db()
    new_token = re.search(r"(bot_[\w-]+)", response.content.decode()).group(1)
    assert bot.token_hash == hash_token(new_token) != old_hash


def test_blacklist_entries_added_and_deleted_in_admin_are_versioned(alice, tenant_a):
    client = _admin_client(alice)
    response = client.post(
        "/admin/blacklist/blacklistentry/add/",
        {"tenant": tenant_a.id, "platform": "qq", "platform_user_id": "spammer", "reason": "广告"},
        follow=True,
    )
    assert response.status_code == 200
    entry = BlacklistEntry.objects.get(platform_user_id="spammer")
    assert entry.created_by_id == alice.id
    client.post(f"/admin/blacklist/blacklistentry/{entry.id}/delete/", {"post": "yes"}, follow=True)
    assert not BlacklistEntry.objects.exists()
    assert list(BlacklistChange.objects.filter(tenant=tenant_a).values_list("version", "action")) == [
        (1, "add"),
        (2, "remove"),
    ]


def test_editing_a_blacklist_entry_in_admin_is_one_new_version_of_it(alice, tenant_a):
    from anmei.blacklist.services import blacklist_entry_add

    # given an entry at version 1
    entry, _ = blacklist_entry_add(tenant_id=tenant_a.id, actor=alice, platform="qq", user_id="spammer", reason="广告")

    # when alice changes its reason in admin
    response = _admin_client(alice).post(
        f"/admin/blacklist/blacklistentry/{entry.id}/change/", {"reason": "骚扰", "expires_at": ""}
    )

    # then the entry is updated and the bots get version 2 carrying the new reason
    assert response.status_code == 302
    assert BlacklistEntry.objects.get(pk=entry.pk).reason == "骚扰"
    change = BlacklistChange.objects.get(tenant=tenant_a, version=2)
    assert (change.action, change.reason) == ("add", "admin")
    assert change.data == {"entries": [{"platform": "qq", "user_id": "spammer", "reason": "骚扰", "expires_at": None}]}


def test_gateway_settings_refuse_an_unusable_retry_schedule(alice, tenant_a):
    from anmei.bots.services import gateway_settings_get_or_create

    gateway = gateway_settings_get_or_create(tenant_id=tenant_a.id)
    response = _admin_client(alice).post(
        f"/admin/bots/gatewaysettings/{gateway.id}/change/",
        {
            "tenant": tenant_a.id,
            "retry_countdowns": '["soon", -1]',
        },
    )
    assert response.status_code == 200 and b"retry_countdowns" in response.content  # the form again, with an error
    gateway.refresh_from_db()
    assert gateway.retry_countdowns == [5.0, 15.0, 60.0]
    type(gateway).objects.filter(pk=gateway.pk).update(retry_countdowns="garbage")
    gateway.refresh_from_db()
    assert gateway.countdowns == [5.0, 15.0, 60.0]  # bad data written elsewhere falls back to the default
