"""A blacklist push is acknowledged only when the bot acknowledged it.

The bots' callback is down past the whole retry schedule: the bots stay lagging (never marked as
having what they did not get), the periodic resync keeps trying, and once the callback answers
again each bot is brought to the current version — every version exactly once — whether it shows
it is back by a heartbeat, by pulling the list, or only through the resync.
"""

from __future__ import annotations

import pytest

from anmei.blacklist.models import BlacklistBotCursor
from anmei.blacklist.services import blacklist_entry_add
from anmei.bots.services.blacklist_push import blacklist_push_lagging
from anmei.notifications.models import AdminAlert
from tests.fixtures_automation import wait_for
from tests.fixtures_bots import PUSH_PATH, bot_client, bot_fast_retries, make_bot
from tests.helpers import poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]

COUNTDOWNS = [0.1, 0.1]


def _cursors(bots) -> list[tuple[int, int]]:
    return [
        (cursor.acknowledged_version, cursor.attempts)
        for cursor in BlacklistBotCursor.objects.filter(bot__in=bots).order_by("bot_id")
    ]


def _spent(bots) -> bool:
    return all(attempts > len(COUNTDOWNS) for _, attempts in _cursors(bots)) and len(_cursors(bots)) == len(bots)


def test_callback_down_past_the_schedule_every_bot_ends_at_the_current_version_exactly_once(
    tenant_a, fake_bot, celery_worker, settings
):
    # given three bots whose callback is down, a short schedule and a short resync backoff
    settings.BLACKLIST_RESYNC_BACKOFF_SECONDS = 0.2
    settings.BLACKLIST_RESYNC_MAX_BACKOFF_SECONDS = 0.4
    bot_fast_retries(tenant_a, COUNTDOWNS)
    made = [make_bot(tenant_a, callback_url=fake_bot.url, name=f"bot-{i}", fake=fake_bot) for i in range(3)]
    bots = [bot for bot, _, _ in made]
    fake_bot.down = True
    # when two changes are made and every push's schedule runs out
    blacklist_entry_add(tenant_id=tenant_a.id, actor=None, platform="wecom", user_id="a")
    blacklist_entry_add(tenant_id=tenant_a.id, actor=None, platform="wecom", user_id="b")
    wait_for(lambda: _spent(bots), timeout=60)
    # then no bot is marked as having a version it never acknowledged, and the admins know once
    assert [version for version, _ in _cursors(bots)] == [0, 0, 0]
    assert sorted(AdminAlert.objects.filter(source="blacklist_push").values_list("details__bot_id", flat=True)) == [
        bot.id for bot in bots
    ]
    # and the periodic resync keeps trying while the callback is down (with its backoff)
    tried = len(fake_bot.requests(path=PUSH_PATH))
    for _ in range(3):
        poll(lambda: False, timeout=0.5)  # past the backoff
        blacklist_push_lagging()
    assert poll(lambda: len(fake_bot.requests(path=PUSH_PATH)) > tried, timeout=15)
    assert [version for version, _ in _cursors(bots)] == [0, 0, 0]

    # when the callback answers again: bot 0 sends a heartbeat, bot 1 pulls the list, bot 2 says nothing
    wait_for(lambda: _spent(bots), timeout=30)  # every retry in flight has failed and backed off
    fake_bot.down = False
    assert bot_client(made[0][1]).post("/api/v1/bot/heartbeat", {}, format="json").status_code == 200
    assert bot_client(made[0][1]).post("/api/v1/bot/heartbeat", {}, format="json").status_code == 200
    assert bot_client(made[1][1]).get("/api/v1/bot/blacklist").status_code == 200

    def current() -> bool:
        blacklist_push_lagging()  # beat's resync, for bot 2
        return [version for version, _ in _cursors(bots)] == [2, 2, 2]

    wait_for(current, timeout=60, interval=0.3)
    blacklist_push_lagging()
    bot_client(made[0][1]).post("/api/v1/bot/heartbeat", {}, format="json")
    poll(lambda: False, timeout=0.5)  # anything extra would arrive now

    # then every bot got each version exactly once after it returned, in order
    for bot in bots:
        delivered = [r.body["version"] for r in fake_bot.requests(bot_id=bot.id, path=PUSH_PATH) if r.answered == 200]
        assert delivered == [1, 2], (bot.name, delivered)
    assert _cursors(bots) == [(2, 0), (2, 0), (2, 0)]
