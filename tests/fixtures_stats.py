"""The hand-built day of the statistics tests (a pytest plugin loaded by tests/conftest.py).

Tenant alpha (Asia/Shanghai), local day D = Friday 2026-11-20, built through the real services at
exact instants (time-machine), so every reporting event is the one production would write:

  C1 web     u1 new       bot-only: 09:00 question, bot away reply, ended by inactivity 09:30
  C2 wechat  u2 new       bot keyword reply 10:00, 2nd msg 10:02, Carol claims 10:05 (hand-off),
                          replies 10:06 and 10:08 (customer 10:07), ends 10:20; rated 5
  C3 web     u3 returning (first conversation D-1 15:00-15:10) 11:00 question, Carol claims 11:01:30,
                          replies 11:03, transfers to Dave (accepted 11:05), customer 11:06,
                          Dave replies 11:08, ends 11:30; rated 2
  C4 wechat  u4 new       14:00 question, Carol claims 14:00:30, replies 14:01, ends 14:10
  C5 wechat  u4 again     re-contact 16:00 (so C4 is not resolved at first contact), Carol claims
                          16:00:10, replies 16:00:40, ends 16:20
  C6 web     u5 new       across midnight: 23:50 question, Dave claims 23:55, replies D+1 00:05,
                          customer D+1 00:06, ends D+1 00:20
  C7 web     u6 new       empty registration conversation 12:00 (only the bot's welcome), ended by
                          inactivity 12:30
  (C4 also opens with a registration welcome, which is neither a bot reply nor a hand-off.)
  Tenant beta: one conversation of Bill with Ben 10:00-10:30 (web), rated 1, words 超声刀.
"""

from __future__ import annotations

import contextlib
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from anmei.accounts.models import User
from anmei.conversations.models import Conversation, Message
from tests.conftest import make_tenant, make_user

SHANGHAI = ZoneInfo("Asia/Shanghai")
D = date(2026, 11, 20)


def at(hhmmss: str, day: date = D) -> datetime:
    parts = [int(p) for p in hhmmss.split(":")] + [0]
    return datetime.combine(day, time(parts[0], parts[1], parts[2]), tzinfo=SHANGHAI)


class DayBuilder:
    """Runs each step at an exact instant, with its on-commit callbacks executed (events written)."""

    def __init__(self, capture):
        self.capture = capture

    def run(self, when: datetime, fn, *args, **kwargs):
        with time_machine.travel(when, tick=False), self.capture(execute=True):
            return fn(*args, **kwargs)

    def user(self, when, tenant, username, role=User.Role.CUSTOMER, **extra):
        return self.run(when, make_user, tenant, username, role, **extra)

    def conversation(self, when, customer, channel="web", **extra) -> Conversation:
        return self.run(
            when,
            Conversation.objects.create,
            tenant_id=customer.tenant_id,
            customer=customer,
            channel=channel,
            **extra,
        )

    def say(self, when, user, conversation, text):
        from anmei.conversations.services import conversation_message_send

        return self.run(
            when, conversation_message_send, user=user, conversation_id=conversation.id, type="text", content=text
        )

    def bot_reply(self, when, message):
        from anmei.ai.services.autoreply import auto_reply_create

        return self.run(when, auto_reply_create, message_id=message.id)

    def claim(self, when, user, conversation):
        from anmei.conversations.services import conversation_claim

        return self.run(when, conversation_claim, user=user, conversation_id=conversation.id)

    def end(self, when, user, conversation):
        from anmei.conversations.services import conversation_end

        return self.run(
            when,
            conversation_end,
            user=user,
            conversation_id=conversation.id,
            tenant_id=conversation.tenant_id,
            reason="consultant" if user else "inactivity",
        )

    def rate(self, when, customer, conversation, score):
        from anmei.stats.services.ratings import rating_create

        return self.run(when, rating_create, user=customer, conversation_id=conversation.id, score=score)


def _committed(execute: bool = True):
    """Outside a test transaction every step commits, so on-commit callbacks run by themselves."""
    return contextlib.nullcontext()


@pytest.fixture(scope="module")
def stats_day_committed(django_db_setup, django_db_blocker):
    """Build (and roll up) the day once per module, committed; flush it away after the module.

    Each test then runs in its own transaction on top of it (`stats_day`), so what a test changes
    is rolled back.
    """
    from django.core.management import call_command

    with django_db_blocker.unblock():
        day = _build(DayBuilder(_committed), callback_url="http://127.0.0.1:9")
        roll_all()
        yield day
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def stats_day(stats_day_committed, db):
    return stats_day_committed


def _build(b: DayBuilder, *, callback_url: str):
    """Build the day; return a namespace of the tenants, people and conversations."""
    from anmei.bots.services import bot_create
    from anmei.bots.services.instances import gateway_settings_get_or_create
    from anmei.conversations.services import (
        conversation_accept,
        conversation_settings_get_or_create,
        conversation_transfer,
    )

    early = at("08:00", D - timedelta(days=2))
    alpha = b.run(early, make_tenant, "alpha")
    beta = b.run(early, make_tenant, "beta")
    for tenant in (alpha, beta):
        b.run(early, gateway_settings_get_or_create, tenant_id=tenant.id)
        b.run(early, conversation_settings_get_or_create, tenant_id=tenant.id)
    carol = b.user(early, alpha, "carol", User.Role.CONSULTANT, nickname="Carol")
    dave = b.user(early, alpha, "dave", User.Role.CONSULTANT, nickname="Dave")
    alice = b.user(early, alpha, "alice", User.Role.ADMIN)
    ben = b.user(early, beta, "ben", User.Role.CONSULTANT)
    bob = b.user(early, beta, "bob", User.Role.ADMIN)
    bot, _, _ = b.run(
        early, bot_create, tenant_id=alpha.id, name="wx-bot", platform="wechat", callback_url=callback_url
    )
    bot.auto_reply_rules = [{"keyword": "价格", "reply": "水光针 1280 元起，欢迎到店面诊。"}]
    bot.save(update_fields=["auto_reply_rules"])
    wechat = {"bot_instance_id": bot.id, "bot_name": bot.name}

    # u3: returning customer, first seen the day before.
    u3 = b.user(at("14:55", D - timedelta(days=1)), alpha, "u3")
    c0 = b.conversation(at("15:00", D - timedelta(days=1)), u3, "web", is_default=True)
    b.say(at("15:00", D - timedelta(days=1)), u3, c0, "你好")
    b.end(at("15:10", D - timedelta(days=1)), None, c0)

    # C1 bot-only
    u1 = b.user(at("08:50"), alpha, "u1")
    c1 = b.conversation(at("09:00"), u1, "web", is_default=True)
    m = b.say(at("09:00"), u1, c1, "玻尿酸多少钱？")
    b.bot_reply(at("09:00"), m)
    b.end(at("09:30"), None, c1)

    # C2 bot, then hand-off to Carol, rated 5
    u2 = b.user(at("09:55"), alpha, "u2", source="wechat")
    c2 = b.conversation(at("10:00"), u2, "wechat", is_default=True, **wechat)
    m = b.say(at("10:00"), u2, c2, "水光针价格")
    b.bot_reply(at("10:00"), m)
    b.say(at("10:02"), u2, c2, "热玛吉做一次多久")
    b.claim(at("10:05"), carol, c2)
    b.say(at("10:06"), carol, c2, "您好，我是顾问 Carol")
    b.say(at("10:07"), u2, c2, "好的谢谢")
    b.say(at("10:08"), carol, c2, "不客气")
    b.end(at("10:20"), carol, c2)
    b.rate(at("10:30"), u2, c2, 5)

    # C3 human only, transferred Carol -> Dave, rated 2
    c3 = b.conversation(at("11:00"), u3, "web")
    b.say(at("11:00"), u3, c3, "双眼皮恢复期多久？")
    b.claim(at("11:01:30"), carol, c3)
    b.say(at("11:03"), carol, c3, "一般一到两周")
    b.run(at("11:04"), conversation_transfer, user=carol, conversation_id=c3.id, to_consultant_id=dave.id)
    b.run(at("11:05"), conversation_accept, user=dave, conversation_id=c3.id)
    b.say(at("11:06"), u3, c3, "好的")
    b.say(at("11:08"), dave, c3, "我是 Dave，接手您的咨询")
    b.end(at("11:30"), dave, c3)
    b.rate(at("11:40"), u3, c3, 2)

    # C7 empty registration conversation
    u6 = b.user(at("11:55"), alpha, "u6")
    c7 = b.conversation(at("12:00"), u6, "web", is_default=True)
    b.run(  # the registration welcome: a bot message that is neither a reply nor a hand-off
        at("12:00"), Message.objects.create, tenant_id=alpha.id, conversation=c7, sender_type="bot",
        content="欢迎！", payload={"kind": "welcome", "source": "template"},
    )  # fmt: skip
    b.end(at("12:30"), None, c7)

    # C4 and its re-contact C5
    u4 = b.user(at("13:55"), alpha, "u4", source="wechat")
    c4 = b.conversation(at("14:00"), u4, "wechat", is_default=True, **wechat)
    b.run(  # a welcome before the claim does not make the claim a hand-off
        at("14:00"), Message.objects.create, tenant_id=alpha.id, conversation=c4, sender_type="bot",
        content="欢迎！", payload={"kind": "welcome", "source": "agent"},
    )  # fmt: skip
    b.say(at("14:00"), u4, c4, "玻尿酸可以维持多久？")
    b.claim(at("14:00:30"), carol, c4)
    b.say(at("14:01"), carol, c4, "半年到一年")
    b.end(at("14:10"), carol, c4)
    c5 = b.conversation(at("16:00"), u4, "wechat", **wechat)
    b.say(at("16:00"), u4, c5, "打完玻尿酸脸肿怎么办")
    b.claim(at("16:00:10"), carol, c5)
    b.say(at("16:00:40"), carol, c5, "冷敷，三天内会消")
    b.end(at("16:20"), carol, c5)

    # C6 across midnight
    u5 = b.user(at("23:40"), alpha, "u5")
    c6 = b.conversation(at("23:50"), u5, "web", is_default=True)
    b.say(at("23:50"), u5, c6, "热玛吉价格多少")
    b.claim(at("23:55"), dave, c6)
    b.say(at("00:05", D + timedelta(days=1)), dave, c6, "一万二起")
    b.say(at("00:06", D + timedelta(days=1)), u5, c6, "谢谢")
    b.end(at("00:20", D + timedelta(days=1)), dave, c6)

    # Tenant beta
    bill = b.user(at("09:00"), beta, "bill")
    cb = b.conversation(at("10:00"), bill, "web", is_default=True)
    b.say(at("10:00"), bill, cb, "超声刀效果怎么样？")
    b.claim(at("10:01"), ben, cb)
    b.say(at("10:02"), ben, cb, "效果很好")
    b.end(at("10:30"), ben, cb)
    b.rate(at("10:40"), bill, cb, 1)

    class Day:
        pass

    day = Day()
    day.__dict__.update(
        alpha=alpha, beta=beta, carol=carol, dave=dave, alice=alice, ben=ben, bob=bob, bot=bot,
        u1=u1, u2=u2, u3=u3, u4=u4, u5=u5, u6=u6, bill=bill,
        c0=c0, c1=c1, c2=c2, c3=c3, c4=c4, c5=c5, c6=c6, c7=c7, cb=cb, builder=b,
    )  # fmt: skip
    return day


def roll_all(day_from: date = D - timedelta(days=1), day_to: date = D + timedelta(days=1)) -> None:
    """Re-roll the days of the hand-built day for both tenants (what stats_backfill does)."""
    from anmei.stats.services.windows import rollup_days
    from anmei.tenants.models import Tenant

    days = [day_from + timedelta(days=i) for i in range((day_to - day_from).days + 1)]
    for tenant in Tenant.objects.order_by("id"):
        rollup_days(tenant_id=tenant.id, days=days, terms=True)
