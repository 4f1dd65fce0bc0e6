"""Blacklist sync through a real worker and fake bots: signed, in version order, once, retried, alerted."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from anmei.blacklist.models import BlacklistBotCursor, BlacklistEntry
from anmei.blacklist.services import blacklist_expire
from anmei.bots.services.blacklist_push import blacklist_push_pending
from anmei.notifications.models import AdminAlert
from tests.fixtures_bots import PUSH_PATH, bot_client, bot_fast_retries, make_bot
from tests.helpers import poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]

URL = "/api/v1/blacklist"


def _pushes(fake, bot_id, *, ok_only: bool = False):
    return [r for r in fake.requests(bot_id=bot_id, path=PUSH_PATH) if not ok_only or r.answered == 200]


def test_every_kind_of_change_reaches_every_bot_signed_and_in_version_order(
    tenant_a, alice, as_user, fake_bot, celery_worker
):
    bots = [make_bot(tenant_a, callback_url=fake_bot.url, name=f"bot-{i}", fake=fake_bot)[0] for i in range(2)]
    client = as_user(alice)
    soon = (timezone.now() + timedelta(seconds=1)).isoformat()
    entry_id = client.post(URL, {"platform": "wecom", "user_id": "a", "reason": "spam"}, format="json").json()["id"]
    client.delete(f"{URL}/{entry_id}")
    client.post(
        f"{URL}/batch",
        {
            "action": "add",
            "entries": [{"platform": "qq", "user_id": "b"}, {"platform": "qq", "user_id": "c", "expires_at": soon}],
        },
        format="json",
    )
    client.post(f"{URL}/batch", {"action": "remove", "entries": [{"platform": "qq", "user_id": "b"}]}, format="json")
    time.sleep(1.1)
    assert blacklist_expire() == 1  # the beat task's body: c expired

    for bot in bots:
        assert fake_bot.wait_for(lambda _, bot=bot: len(_pushes(fake_bot, bot.id)) == 5), _pushes(fake_bot, bot.id)
        pushes = _pushes(fake_bot, bot.id)
        assert all(p.signature_ok and p.answered == 200 for p in pushes)
        assert [(p.body["version"], p.body["action"]) for p in pushes] == [
            (1, "add"),
            (2, "remove"),
            (3, "add"),
            (4, "remove"),
            (5, "remove"),
        ]
        assert all(p.body["config_type"] == "blacklist" for p in pushes)
        assert pushes[0].body["data"] == {
            "entries": [{"platform": "wecom", "user_id": "a", "reason": "spam", "expires_at": None}]
        }
        assert [e["user_id"] for e in pushes[2].body["data"]["entries"]] == ["b", "c"]  # one push for the batch
        assert pushes[4].body["data"] == {"entries": [{"platform": "qq", "user_id": "c"}]}
        assert poll(lambda bot=bot: BlacklistBotCursor.objects.get(bot=bot).acknowledged_version == 5)


def test_bot_failing_twice_then_ok_gets_the_change_exactly_once_more(tenant_a, alice, as_user, fake_bot, celery_worker):
    bot, _, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    bot_fast_retries(tenant_a)
    fake_bot.script(bot.id, 500, 500)
    as_user(alice).post(URL, {"platform": "wecom", "user_id": "a"}, format="json")

    assert fake_bot.wait_for(lambda _: len(_pushes(fake_bot, bot.id, ok_only=True)) == 1)
    time.sleep(0.5)  # anything extra would arrive now
    assert [(p.body["version"], p.answered) for p in _pushes(fake_bot, bot.id)] == [(1, 500), (1, 500), (1, 200)]
    assert blacklist_push_pending(bot_id=bot.id) is None  # a redelivered task finds nothing to send
    assert len(_pushes(fake_bot, bot.id)) == 3
    assert AdminAlert.objects.count() == 0


def test_unreachable_bot_produces_an_admin_alert_and_healthy_bots_are_unaffected(
    tenant_a, alice, as_user, fake_bot, unused_url, celery_worker
):
    dead, _, _ = make_bot(tenant_a, callback_url=unused_url, name="dead")
    alive, _, _ = make_bot(tenant_a, callback_url=fake_bot.url, name="alive", fake=fake_bot)
    bot_fast_retries(tenant_a, [0.2, 0.2, 0.2])
    as_user(alice).post(URL, {"platform": "wecom", "user_id": "a"}, format="json")

    assert fake_bot.wait_for(lambda _: len(_pushes(fake_bot, alive.id)) == 1)
    assert poll(lambda: AdminAlert.objects.filter(source="blacklist_push").exists())
    alert = AdminAlert.objects.get(source="blacklist_push")
    assert (alert.tenant_id, alert.code, alert.details["bot_id"], alert.details["version"]) == (
        tenant_a.id,
        "bot_unreachable",
        dead.id,
        1,
    )
    cursor = BlacklistBotCursor.objects.get(bot=dead)
    assert cursor.acknowledged_version == 0 and cursor.last_error  # lagging: never marked as having v1


def test_a_bot_whose_schedule_ran_out_gets_every_missed_change_once_when_it_pulls(
    tenant_a, alice, as_user, fake_bot, celery_worker
):
    bot, token, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    bot_fast_retries(tenant_a, [0.1, 0.1, 0.1])
    fake_bot.script(bot.id, 500, 500, 500, 500)  # v1's whole schedule fails
    client = as_user(alice)
    client.post(URL, {"platform": "wecom", "user_id": "a"}, format="json")
    assert poll(lambda: AdminAlert.objects.filter(source="blacklist_push").exists())
    client.post(URL, {"platform": "wecom", "user_id": "b"}, format="json")  # waits behind the lagging v1
    assert BlacklistBotCursor.objects.get(bot=bot).acknowledged_version == 0
    pulled = bot_client(token).get("/api/v1/bot/blacklist").json()  # the bot is back
    assert pulled["version"] == 2
    assert sorted(e["user_id"] for e in pulled["entries"]) == ["a", "b"]
    assert fake_bot.wait_for(lambda _: len(_pushes(fake_bot, bot.id, ok_only=True)) == 2)
    assert [p.body["version"] for p in _pushes(fake_bot, bot.id, ok_only=True)] == [1, 2]
    assert poll(lambda: BlacklistBotCursor.objects.get(bot=bot).acknowledged_version == 2)


def test_expiry_sweep_is_idempotent(tenant_a):
    BlacklistEntry.objects.create(
        tenant=tenant_a, platform="qq", platform_user_id="x", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert blacklist_expire() == 1
    assert blacklist_expire() == 0
