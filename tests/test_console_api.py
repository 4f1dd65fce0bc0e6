"""What the console and chat pages need beyond the conversation API: resync, presence, history, side panel."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from anmei.accounts.models import User
from anmei.accounts.services import ws_ticket_issue
from anmei.common.presence import online_user_ids
from anmei.conversations.models import Conversation, ConversationEvent
from anmei.conversations.services import conversation_claim, message_create
from tests.conftest import make_user
from tests.helpers import assert_error, ws

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


def _conversation(customer: User, *texts: str, status: str = "waiting") -> Conversation:
    conversation = Conversation.objects.create(tenant=customer.tenant, customer=customer, status=status)
    for text in texts:
        message_create(conversation=conversation, sender_type="customer", sender=customer, content=text)
    return conversation


async def _open(path: str, user: User):
    communicator = ws(path, await sync_to_async(ws_ticket_issue)(user=user))
    assert (await communicator.connect())[0]
    assert (await communicator.receive_json_from(timeout=3))["type"] == "connection.ready"
    return communicator


async def _ask(communicator, command: dict, reply_type: str) -> dict:
    await communicator.send_json_to(command)
    while True:
        event = await communicator.receive_json_from(timeout=3)
        if event["type"] in (reply_type, "error"):
            return event


# ---- resync --------------------------------------------------------------------------------


@pytest.fixture
def cora(tenant_a):
    return make_user(tenant_a, "cora", User.Role.CONSULTANT)


async def test_sync_returns_what_came_after_the_cursors_and_nothing_of_other_tenants(
    carol, cora, cathy, bill, tenant_a
):
    # given Carol's conversation, Cora's conversation, a waiting one, and tenant B's
    mine = await sync_to_async(_conversation)(cathy, "旧消息")
    await sync_to_async(conversation_claim)(user=carol, conversation_id=mine.id)
    dora = await sync_to_async(make_user)(tenant_a, "dora")
    coras = await sync_to_async(_conversation)(dora)
    await sync_to_async(conversation_claim)(user=cora, conversation_id=coras.id)
    erin = await sync_to_async(make_user)(tenant_a, "erin")
    waiting = await sync_to_async(_conversation)(erin)
    other_tenant = await sync_to_async(_conversation)(bill, "beta secret")
    console = await _open("/ws/console/", carol)
    start = await _ask(console, {"type": "sync"}, "sync.result")

    # when messages are written everywhere after the cursor
    for conversation, text in ((mine, "新消息"), (coras, "not mine"), (waiting, "等待中"), (other_tenant, "beta")):
        await sync_to_async(message_create)(conversation=conversation, sender_type="customer", content=text)
    result = await _ask(
        console,
        {"type": "sync", "since_message": start["cursor"]["message"], "since_event": start["cursor"]["event"]},
        "sync.result",
    )

    # then a fresh tab got only cursors; the resync has Carol's and the waiting one's new messages
    assert (start["messages"], start["events"]) == ([], [])
    new_ids = {m["id"] for m in result["messages"] if m["content"] in ("新消息", "等待中")}
    contents = [m["content"] for m in result["messages"]]
    assert len(new_ids) == 2
    assert "not mine" not in contents and "beta" not in contents and "beta secret" not in contents
    # the overlap window may repeat older messages of reachable conversations, never others
    assert set(contents) <= {"旧消息", "新消息", "等待中"}
    assert result["cursor"]["message"] == max(m["id"] for m in result["messages"])
    assert result["more"] is False
    await console.disconnect()


async def test_sync_returns_missed_status_changes_with_the_ids_live_events_carry(carol, cathy):
    conversation = await sync_to_async(_conversation)(cathy, "hi")
    console = await _open("/ws/console/", carol)
    start = await _ask(console, {"type": "sync"}, "sync.result")

    await sync_to_async(conversation_claim)(user=carol, conversation_id=conversation.id)
    live = await _ask(console, {"type": "ping"}, "conversation.updated")
    result = await _ask(console, {"type": "sync", "since_event": start["cursor"]["event"]}, "sync.result")

    stored = await ConversationEvent.objects.aget(conversation=conversation, action="claim")
    assert live["event_id"] == stored.id
    assert [(e["id"], e["action"], e["from_status"], e["status"], e["actor_id"]) for e in result["events"]] == [
        (stored.id, "claim", "waiting", "active", carol.id)
    ]
    assert result["messages"] == []  # no message cursor sent: no messages asked for
    await console.disconnect()


async def test_customer_sync_sees_only_their_own_conversations(cathy, tenant_a):
    own = await sync_to_async(_conversation)(cathy)
    dora = await sync_to_async(make_user)(tenant_a, "dora")
    other = await sync_to_async(_conversation)(dora)
    customer = await _open("/ws/customer/", cathy)
    for conversation, text in ((own, "mine"), (other, "dora's")):
        await sync_to_async(message_create)(conversation=conversation, sender_type="bot", content=text)

    result = await _ask(customer, {"type": "sync", "since_message": 0, "since_event": 0}, "sync.result")

    assert [m["content"] for m in result["messages"]] == ["mine"]
    await customer.disconnect()


@pytest.mark.parametrize("cursor", [-1, "5", 1.5, True, [1]])
async def test_sync_with_a_bad_cursor_is_a_validation_error(carol, cursor):
    console = await _open("/ws/console/", carol)

    reply = await _ask(console, {"type": "sync", "since_message": cursor}, "sync.result")

    assert (reply["type"], reply["code"], reply["status"], reply["details"]) == (
        "error",
        "validation_error",
        400,
        {"field": "since_message"},
    )
    await console.disconnect()


# ---- presence ------------------------------------------------------------------------------


async def test_away_leaves_the_routing_online_set_and_online_returns(carol, cora, ben):
    carol_ws, ben_ws = await _open("/ws/console/", carol), await _open("/ws/console/", ben)
    assert await sync_to_async(online_user_ids)(tenant_id=carol.tenant_id) == {carol.id}

    away = await _ask(carol_ws, {"type": "presence.set", "status": "away"}, "presence.state")
    offline_now = await sync_to_async(online_user_ids)(tenant_id=carol.tenant_id)
    await _ask(carol_ws, {"type": "ping"}, "pong")  # heartbeats while away keep her out
    still_offline = await sync_to_async(online_user_ids)(tenant_id=carol.tenant_id)
    listing = await _ask(carol_ws, {"type": "presence.list"}, "presence.list")
    back = await _ask(carol_ws, {"type": "presence.set", "status": "online"}, "presence.state")
    online_again = await sync_to_async(online_user_ids)(tenant_id=carol.tenant_id)
    bad = await _ask(carol_ws, {"type": "presence.set", "status": "invisible"}, "presence.state")

    assert (away["status"], offline_now, still_offline) == ("away", set(), set())
    assert [(s["id"], s["status"]) for s in listing["staff"]] == [(carol.id, "offline"), (cora.id, "offline")]
    assert (back["status"], online_again) == ("online", {carol.id})
    assert (bad["type"], bad["code"]) == ("error", "validation_error")
    await carol_ws.disconnect()
    await ben_ws.disconnect()


# ---- REST reads of the pages ---------------------------------------------------------------


def test_history_pages_upward_and_is_scoped_to_who_may_see_the_conversation(carol, cathy, bill, ben, tenant_a, as_user):
    conversation = _conversation(cathy, *[f"m{i}" for i in range(5)])
    blocked, _ = message_create(conversation=conversation, sender_type="customer", content="blocked", is_blocked=True)
    dora = make_user(tenant_a, "dora")

    newest = as_user(carol).get(f"/api/v1/console/conversations/{conversation.id}/history?limit=3").json()
    older = as_user(cathy).get(
        f"/api/v1/console/conversations/{conversation.id}/history?limit=3&before={newest['results'][0]['id']}"
    )

    assert [m["content"] for m in newest["results"]] == ["m2", "m3", "m4"] and newest["has_more"] is True
    assert older.status_code == 200
    assert [m["content"] for m in older.json()["results"]] == ["m0", "m1"] and older.json()["has_more"] is False
    for outsider in (dora, ben, bill):
        assert_error(
            as_user(outsider).get(f"/api/v1/console/conversations/{conversation.id}/history"), 404, "not_found"
        )
    assert_error(as_user(carol).get(f"/api/v1/console/conversations/{conversation.id}/history?limit=0"), 400)


def test_timeline_lists_the_status_changes_of_a_visible_conversation(carol, cathy, ben, as_user):
    conversation = _conversation(cathy)
    conversation_claim(user=carol, conversation_id=conversation.id)

    events = as_user(cathy).get(f"/api/v1/console/conversations/{conversation.id}/events").json()["results"]

    assert [(e["action"], e["from_status"], e["status"], e["actor_id"]) for e in events] == [
        ("claim", "waiting", "active", carol.id)
    ]
    assert_error(as_user(ben).get(f"/api/v1/console/conversations/{conversation.id}/events"), 404)


def test_previews_give_the_last_visible_message_per_conversation_of_the_tenant_only(
    carol, cathy, bill, ben, tenant_a, as_user
):
    first = _conversation(cathy, "a", "b")
    message_create(conversation=first, sender_type="customer", content="hidden", is_blocked=True)
    empty = _conversation(make_user(tenant_a, "dora"))
    foreign = _conversation(bill, "beta")
    ids = f"{first.id},{empty.id},{foreign.id}"

    mine = as_user(carol).get(f"/api/v1/console/previews?ids={ids}").json()["results"]
    theirs = as_user(ben).get(f"/api/v1/console/previews?ids={ids}").json()["results"]

    assert [(m["conversation_id"], m["content"]) for m in mine] == [(first.id, "b")]
    assert [(m["conversation_id"], m["content"]) for m in theirs] == [(foreign.id, "beta")]
    assert_error(as_user(carol).get("/api/v1/console/previews?ids=1;DROP"), 400, "validation_error")


def test_customer_panel_shows_profile_history_and_blacklist_to_the_tenant_staff_only(
    carol, alice, cathy, ben, tenant_a, as_user
):
    from anmei.blacklist.services import blacklist_entry_add

    wang = make_user(tenant_a, "wx_wang", nickname="小王", source="wechat", platform_user_id="wx-123")
    old = _conversation(wang, status="ended")
    new = _conversation(wang)
    blacklist_entry_add(tenant_id=tenant_a.id, actor=alice, platform="wechat", user_id="wx-123", reason="spam")

    panel = as_user(carol).get(f"/api/v1/console/customers/{wang.id}").json()

    assert (panel["nickname"], panel["source"], panel["platform_user_id"]) == ("小王", "wechat", "wx-123")
    assert [(c["id"], c["status"]) for c in panel["conversations"]] == [(new.id, "waiting"), (old.id, "ended")]
    assert (panel["blacklisted"]["reason"], panel["blacklisted"]["expires_at"]) == ("spam", None)
    assert as_user(carol).get(f"/api/v1/console/customers/{cathy.id}").json()["blacklisted"] is None
    assert_error(as_user(ben).get(f"/api/v1/console/customers/{wang.id}"), 404, "not_found")
    assert_error(as_user(carol).get(f"/api/v1/console/customers/{carol.id}"), 404, "not_found")
    assert_error(as_user(cathy).get(f"/api/v1/console/customers/{wang.id}"), 403)


@pytest.mark.parametrize("path", ["/console/", "/chat/"])
def test_pages_forbid_inline_script_and_carry_no_inline_code(client, path):
    response = client.get(path)

    policy = response["Content-Security-Policy"]
    html = response.content.decode()
    assert response.status_code == 200
    assert "script-src 'self';" in policy and "unsafe-inline" not in policy and "object-src 'none'" in policy
    assert "<script>" not in html and " on" + "click=" not in html and "style=" not in html
