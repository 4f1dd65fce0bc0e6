"""The bot webhook's one-statement path stores exactly what the general path stores.

The same scenario (new customer, returning messages, a repeat, a nickname change, another bot, a
blocked sender, a new conversation after the end, a claimed conversation) runs once with the
one-statement path on (tenant A) and once with it off (tenant B); the stored rows must match.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from anmei.accounts.models import User
from anmei.blacklist.models import BlacklistInterception
from anmei.blacklist.services import blacklist_entry_add
from anmei.bots.services import bot_message_receive
from anmei.conversations.models import Conversation, ConversationEvent, Message
from anmei.conversations.services import conversation_claim, conversation_end
from tests.fixtures_bots import inbound, make_bot

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's"),
]


def _scenario(tenant, consultant) -> dict[str, int]:
    """Run the messages through the service; return the queries each named step took."""
    bot = make_bot(tenant, callback_url="http://127.0.0.1:9")[0]
    other_bot = make_bot(tenant, callback_url="http://127.0.0.1:9", name="astrbot-2")[0]
    blacklist_entry_add(tenant_id=tenant.id, actor=None, platform="wecom", user_id="wx-blocked", reason="广告")
    queries = {}

    def receive(step: str, data: dict, via=bot) -> Message:
        with CaptureQueriesContext(connection) as captured:
            message, _ = bot_message_receive(bot=via, data=data)
        queries[step] = len(captured)
        return message

    first = receive("first message", inbound("m-1", content="你好"))
    receive("returning", inbound("m-2", content="在吗"))
    receive("repeat", inbound("m-2", content="在吗"))
    receive("new nickname", inbound("m-3", content="改名了", nickname="小美美"))
    receive("other bot", inbound("m-4", content="换个机器人"), via=other_bot)
    receive("blocked", inbound("m-5", user_id="wx-blocked", content="广告"))
    conversation_end(user=consultant, tenant_id=tenant.id, conversation_id=first.conversation_id)
    receive("after the end", inbound("m-6", content="又来了"))
    again = receive("returning again", inbound("m-7", content="还在吗"))
    conversation_claim(user=consultant, conversation_id=again.conversation_id)
    receive("claimed", inbound("m-8", content="谢谢"))
    return queries


def _stored(tenant) -> dict[str, list]:
    """The tenant's stored rows, ids replaced by positions and timestamps by their relations."""
    users = list(User.objects.filter(tenant=tenant, role="customer").order_by("id"))
    conversations = list(Conversation.objects.filter(tenant=tenant).order_by("id"))
    bots = sorted({c.bot_instance_id for c in conversations})
    user_pos = {u.id: i for i, u in enumerate(users)}
    conv_pos = {c.id: i for i, c in enumerate(conversations)}
    messages = list(Message.objects.filter(tenant=tenant).order_by("id"))
    last_at = {c.id: max(m.created_at for m in messages if m.conversation_id == c.id) for c in conversations}
    return {
        "customers": [(u.username, u.nickname, u.source, u.platform_user_id) for u in users],
        "conversations": [
            (
                user_pos[c.customer_id],
                c.status,
                c.channel,
                bots.index(c.bot_instance_id),
                c.bot_name,
                c.is_default,
                c.consultant_id is not None,
                c.last_message_at == last_at[c.id],
            )
            for c in conversations
        ],
        "messages": [
            (
                conv_pos[m.conversation_id],
                m.sender_type,
                user_pos.get(m.sender_id),
                m.type,
                m.content,
                {k: v for k, v in m.payload.items() if k != "bot_id"},
                m.external_id.split(":")[-1],
                m.is_blocked,
            )
            for m in messages
        ],
        "events": sorted(
            (conv_pos[e.conversation_id], e.action, e.from_status, e.to_status)
            for e in ConversationEvent.objects.filter(tenant=tenant)
        ),
        "interceptions": list(
            BlacklistInterception.objects.filter(tenant=tenant).values_list("platform_user_id", "count")
        ),
    }


def test_the_one_statement_path_stores_what_the_general_path_stores(tenant_a, tenant_b, carol, ben, settings):
    # given the same scenario, through the one-statement path in tenant A and the general path in tenant B
    settings.BOT_INGEST_FAST_PATH = True
    fast_queries = _scenario(tenant_a, carol)
    settings.BOT_INGEST_FAST_PATH = False
    general_queries = _scenario(tenant_b, ben)

    # when the stored rows of both tenants are read
    fast, general = _stored(tenant_a), _stored(tenant_b)

    # then they are the same row for row, and the returning messages really took one statement
    assert fast == general
    assert (len(fast["messages"]), len(fast["conversations"]), fast["interceptions"]) == (7, 2, [("wx-blocked", 1)])
    returning = ("returning", "returning again", "claimed")
    assert [fast_queries[step] for step in returning] == [1, 1, 1]
    assert all(general_queries[step] > 1 for step in returning)
