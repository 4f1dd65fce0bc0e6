"""Conversation settings (auto-reply, away message, inactivity timeout) live in the conversations app.

They moved out of the bots' GatewaySettings; the migration copies each tenant's values across and
keeps the old columns for the running release (docs/operations.md, "Upgrade").
"""

from __future__ import annotations

import importlib
from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from anmei.bots.models import GatewaySettings
from anmei.conversations.models import Conversation, ConversationSettings
from anmei.conversations.services import conversation_end_inactive, conversation_settings_get_or_create
from tests.fixtures_bots import bot_client, make_bot

pytestmark = pytest.mark.django_db

MOVE = importlib.import_module("anmei.conversations.migrations.0005_conversation_settings")


def _historical_apps():
    """The models as the migration sees them: GatewaySettings still with the three conversation columns."""
    state = MigrationExecutor(connection).loader.project_state(("conversations", "0005_conversation_settings"))
    return state.apps


def test_the_migration_copies_each_tenants_values_and_the_old_columns_stay_for_the_running_release(tenant_a, tenant_b):
    # given two tenants whose gateway rows carry their own values, written the way the old release writes them
    apps = _historical_apps()
    OldGateway = apps.get_model("bots", "GatewaySettings")
    OldGateway.objects.create(
        tenant_id=tenant_a.id,
        retry_countdowns=[1],
        auto_reply_enabled=False,
        away_message="A 不在",
        inactivity_timeout_minutes=7,
    )
    OldGateway.objects.create(tenant_id=tenant_b.id, retry_countdowns=[2], away_message="B 不在")

    # when the data migration runs, twice (a re-run after a failed deploy)
    MOVE.copy_from_gateway_settings(apps, None)
    MOVE.copy_from_gateway_settings(apps, None)

    # then each tenant has one conversation settings row with its own values
    rows = {
        row.tenant_id: (row.auto_reply_enabled, row.away_message, row.inactivity_timeout_minutes)
        for row in ConversationSettings.objects.all()
    }
    assert rows == {tenant_a.id: (False, "A 不在", 7), tenant_b.id: (True, "B 不在", 30)}
    # and the new release's insert, which no longer names the old columns, gets their database defaults
    GatewaySettings.objects.filter(tenant=tenant_b).delete()
    GatewaySettings.objects.create(tenant=tenant_b, retry_countdowns=[3])
    old = OldGateway.objects.get(tenant_id=tenant_b.id)
    assert (old.auto_reply_enabled, old.away_message, old.inactivity_timeout_minutes) == (
        True,
        "您好，客服暂时不在线，我们会尽快回复您。",
        30,
    )
    assert GatewaySettings.objects.get(tenant=tenant_a).retry_countdowns == [1]


def test_the_bot_config_reads_the_conversation_settings_of_its_own_tenant(tenant_a, tenant_b):
    # given tenant B switched auto-replies off and wrote its own away message; tenant A kept the defaults
    bot, token, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:9")
    other = conversation_settings_get_or_create(tenant_id=tenant_b.id)
    other.auto_reply_enabled, other.away_message = False, "B 的留言"
    other.save()

    # when tenant A's bot pulls its configuration
    config = bot_client(token).get("/api/v1/bot/config").json()

    # then it sees A's settings, untouched by B's
    assert config["auto_reply"]["enabled"] is True
    assert config["away_message"] == "您好，客服暂时不在线，我们会尽快回复您。"

    # and once A changes its own, the next pull carries them
    own = conversation_settings_get_or_create(tenant_id=tenant_a.id)
    own.auto_reply_enabled, own.away_message = False, "A 的留言"
    own.save()
    config = bot_client(token).get("/api/v1/bot/config").json()
    assert (config["auto_reply"]["enabled"], config["away_message"]) == (False, "A 的留言")


def test_the_inactivity_sweep_uses_each_tenants_own_timeout(tenant_a, tenant_b, cathy, bob):
    # given tenant B ends conversations after 10 minutes, tenant A after the default 30
    settings_b = conversation_settings_get_or_create(tenant_id=tenant_b.id)
    settings_b.inactivity_timeout_minutes = 10
    settings_b.save()
    idle_a = Conversation.objects.create(tenant=tenant_a, customer=cathy, status="waiting")
    idle_b = Conversation.objects.create(tenant=tenant_b, customer=bob, status="waiting")
    eleven_minutes_ago = timezone.now() - timedelta(minutes=11)
    Conversation.objects.filter(pk__in=[idle_a.pk, idle_b.pk]).update(created_at=eleven_minutes_ago)

    # when the sweep runs
    ended = conversation_end_inactive()

    # then only B's conversation is ended
    assert ended == 1
    assert Conversation.objects.get(pk=idle_b.pk).status == "ended"
    assert Conversation.objects.get(pk=idle_a.pk).status == "waiting"


def test_a_tenant_admin_edits_only_her_own_conversation_settings_in_admin(alice, tenant_a, tenant_b):
    # given both tenants have a settings row
    own = conversation_settings_get_or_create(tenant_id=tenant_a.id)
    other = conversation_settings_get_or_create(tenant_id=tenant_b.id)
    client = Client()
    client.force_login(alice)

    # when alice lists them, edits hers and tries tenant B's
    listing = client.get("/admin/conversations/conversationsettings/")
    saved = client.post(
        f"/admin/conversations/conversationsettings/{own.id}/change/",
        {"tenant": tenant_a.id, "away_message": "稍后回复", "inactivity_timeout_minutes": 15},
    )
    foreign = client.get(f"/admin/conversations/conversationsettings/{other.id}/change/")

    # then she sees one row, hers changed (the unticked box switched auto-replies off), B's did not
    assert listing.status_code == 200 and listing.context["cl"].result_count == 1
    assert saved.status_code == 302
    own.refresh_from_db()
    assert (own.auto_reply_enabled, own.away_message, own.inactivity_timeout_minutes) == (False, "稍后回复", 15)
    assert foreign.status_code == 302  # the admin's "does not exist" redirect: not hers to open
    other.refresh_from_db()
    assert (other.auto_reply_enabled, other.away_message, other.inactivity_timeout_minutes) == (
        True,
        "您好，客服暂时不在线，我们会尽快回复您。",
        30,
    )
