"""Bot management and the inbound webhook: auth, idempotency, isolation, validation, blocking."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anmei.accounts.models import User
from anmei.automation.models import AutomationRun
from anmei.blacklist.models import BlacklistEntry, BlacklistInterception, InterceptionReport
from anmei.bots.models import BotInstance
from anmei.bots.services import bot_message_receive
from anmei.common.crypto import hash_token
from anmei.common.redis import get_redis
from anmei.conversations.models import Conversation, Message
from anmei.jobs.models import Job
from anmei.notifications.models import Notification
from anmei.stats.models import ReportingEvent
from tests.fixtures_bots import bot_client, inbound, make_bot
from tests.helpers import assert_error, race

URL = "/api/v1/bot/messages"

pytestmark = pytest.mark.usefixtures("fast_hashing")


@pytest.fixture
def bot_a(tenant_a):
    return make_bot(tenant_a, callback_url="http://127.0.0.1:9/alpha")


@pytest.fixture
def bot_b(tenant_b):
    return make_bot(tenant_b, callback_url="http://127.0.0.1:9/beta", name="beta-bot")


def _queued_tasks(name: str, queues=("default", "replies")) -> int:
    """How many `name` tasks wait in the broker's queues (no worker runs in these tests)."""
    return sum(
        json.loads(raw)["headers"]["task"] == name for queue in queues for raw in get_redis().lrange(queue, 0, -1)
    )


# --- bot management -----------------------------------------------------------------------------


def test_admin_creates_bot_and_sees_credentials_once(alice, as_user):
    response = as_user(alice).post(
        "/api/v1/bots", {"name": "wecom-1", "platform": "wecom", "callback_url": "http://bot.test/"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == {"id", "token", "secret"}
    assert body["token"].startswith("bot_") and body["secret"].startswith("bsec_")
    bot = BotInstance.objects.get(pk=body["id"])
    assert bot.tenant_id == alice.tenant_id
    assert bot.token_hash == hash_token(body["token"])
    assert body["token"] not in bot.token_prefix + bot.secret_encrypted
    assert body["secret"] not in bot.secret_encrypted
    listed = as_user(alice).get("/api/v1/bots").json()
    assert [b["id"] for b in listed] == [bot.id]
    assert "token" not in listed[0] and "secret" not in listed[0]
    assert listed[0]["is_stale"] is True


def test_consultant_cannot_create_bot(carol, as_user):
    response = as_user(carol).post(
        "/api/v1/bots", {"name": "x", "platform": "wecom", "callback_url": "http://bot.test/"}, format="json"
    )
    assert_error(response, 403)
    assert BotInstance.objects.count() == 0


def test_create_bot_with_bad_input_is_400_and_nothing_stored(alice, as_user):
    response = as_user(alice).post(
        "/api/v1/bots", {"name": "x", "platform": "myspace", "callback_url": "not a url"}, format="json"
    )
    assert_error(response, 400, "validation_error")
    assert BotInstance.objects.count() == 0


def test_other_tenants_bots_are_invisible_and_cannot_be_rotated(alice, bob, bot_b, as_user):
    assert as_user(alice).get("/api/v1/bots").json() == []
    assert_error(as_user(alice).post(f"/api/v1/bots/{bot_b[0].id}/rotate", {}, format="json"), 404)


def test_rotating_the_token_retires_the_old_one(alice, bot_a, as_user):
    bot, old_token, _ = bot_a
    response = as_user(alice).post(f"/api/v1/bots/{bot.id}/rotate", {"secret": False}, format="json")
    assert response.status_code == 200
    new_token = response.json()["token"]
    assert "secret" not in response.json()
    assert_error(bot_client(old_token).get("/api/v1/bot/config"), 401)
    assert bot_client(new_token).get("/api/v1/bot/config").status_code == 200


# --- inbound webhook ----------------------------------------------------------------------------


def test_inbound_message_creates_customer_conversation_and_message(tenant_a, bot_a):
    bot, token, _ = bot_a
    response = bot_client(token).post(URL, inbound("m-1"), format="json")
    assert response.status_code == 202, response.json()
    body = response.json()
    customer = User.objects.get(tenant=tenant_a, source="wecom", platform_user_id="wx-u1")
    assert customer.role == "customer" and customer.nickname == "小美"
    conversation = Conversation.objects.get(pk=body["conversation_id"])
    assert (conversation.customer_id, conversation.status, conversation.channel, conversation.bot_instance_id) == (
        customer.id,
        "waiting",
        "wecom",
        bot.id,
    )
    message = Message.objects.get(pk=body["message_id"])
    assert (message.sender_type, message.type, message.content, message.is_blocked) == (
        "customer",
        "text",
        "你好",
        False,
    )
    assert body["duplicate"] is False and body["blocked"] is False


def test_repeated_message_id_is_stored_once(bot_a):
    _, token, _ = bot_a
    first = bot_client(token).post(URL, inbound("m-1"), format="json").json()
    again = bot_client(token).post(URL, inbound("m-1", content="changed"), format="json")
    assert again.status_code == 202
    assert again.json()["message_id"] == first["message_id"]
    assert again.json()["duplicate"] is True
    assert Message.objects.count() == 1
    assert Message.objects.get().content == "你好"


def test_second_message_continues_the_open_conversation(bot_a):
    _, token, _ = bot_a
    first = bot_client(token).post(URL, inbound("m-1"), format="json").json()
    second = bot_client(token).post(URL, inbound("m-2", content="在吗"), format="json").json()
    assert second["conversation_id"] == first["conversation_id"]
    assert Conversation.objects.count() == 1
    Conversation.objects.update(status="ended")
    third = bot_client(token).post(URL, inbound("m-3"), format="json").json()
    assert third["conversation_id"] != first["conversation_id"]
    assert Conversation.objects.filter(is_default=True).count() == 1


def test_new_im_customer_starts_one_automation_run(bot_a, django_capture_on_commit_callbacks):
    # Given a bot and a customer it has never seen
    _, token, _ = bot_a
    # When that customer writes twice
    with django_capture_on_commit_callbacks(execute=False):
        bot_client(token).post(URL, inbound("m-1"), format="json")
        bot_client(token).post(URL, inbound("m-2"), format="json")
    # Then their first message's transaction handed exactly one registration run over for them
    from anmei.automation.services import automation_run_start_job
    from anmei.jobs.models import Job

    customer = User.objects.get(platform_user_id="wx-u1")
    assert list(Job.objects.filter(kind="automation.start").values_list("key", "task", "tenant_id", "payload")) == [
        (f"customer:{customer.id}", "workers.registration.start", customer.tenant_id, {"customer_id": customer.id})
    ]
    # and that job's body starts one run (a repeat of it starts no second one)
    with django_capture_on_commit_callbacks(execute=False):
        automation_run_start_job(customer_id=customer.id)
        automation_run_start_job(customer_id=customer.id)
    assert list(AutomationRun.objects.values_list("customer_id", "tenant_id", "status")) == [
        (customer.id, customer.tenant_id, "running")
    ]


def _post(token: str, message_id: str, **extra) -> dict:
    response = bot_client(token).post(URL, inbound(message_id, **extra), format="json")
    assert response.status_code == 202, response.json()
    return response.json()


# A returning customer writing into their open conversation takes one statement on PostgreSQL;
# every other case (new customer, new nickname, blocked, another bot, repeat) must still come out
# exactly as the general path makes it. On SQLite these run the general path throughout.


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's")
def test_returning_customers_message_is_stored_in_one_statement(bot_a, django_assert_num_queries):
    bot, token, _ = bot_a
    first = _post(token, "m-1")
    with django_assert_num_queries(1):
        message, created = bot_message_receive(bot=bot, data=inbound("m-2", content="在吗"))
    stored = Message.objects.get(pk=message.id)
    conversation = Conversation.objects.get(pk=first["conversation_id"])
    assert created and (stored.conversation_id, message.conversation_id) == (conversation.id, conversation.id)
    assert (stored.sender_type, stored.sender_id, stored.type, stored.content, stored.is_blocked) == (
        "customer",
        conversation.customer_id,
        "text",
        "在吗",
        False,
    )
    assert (stored.external_id, stored.payload) == (
        f"bot:{bot.id}:m-2",
        {"platform": "wecom", "platform_message_id": "m-2", "bot_id": bot.id},
    )
    assert conversation.last_message_at == stored.created_at == message.created_at


def test_repeat_of_a_returning_customers_message_is_stored_once(bot_a):
    _, token, _ = bot_a
    _post(token, "m-1")
    second = _post(token, "m-2", content="在吗")
    again = _post(token, "m-2", content="changed")
    assert (again["message_id"], again["duplicate"], second["duplicate"]) == (second["message_id"], True, False)
    assert list(Message.objects.order_by("id").values_list("content", flat=True)) == ["你好", "在吗"]


def test_returning_customer_with_a_new_nickname_gets_it_stored(tenant_a, bot_a):
    _, token, _ = bot_a
    first = _post(token, "m-1")
    second = _post(token, "m-2", nickname="新名字")
    assert second["conversation_id"] == first["conversation_id"]
    assert User.objects.get(tenant=tenant_a, platform_user_id="wx-u1").nickname == "新名字"


def test_returning_customer_blocked_since_is_intercepted_not_stored(tenant_a, bot_a):
    _, token, _ = bot_a
    first = _post(token, "m-1")
    touched = Conversation.objects.get(pk=first["conversation_id"]).last_message_at
    BlacklistEntry.objects.create(tenant=tenant_a, platform="wecom", platform_user_id="wx-u1", reason="spam")
    second = _post(token, "m-2")
    assert (second["blocked"], second["conversation_id"], second["message_id"]) == (True, None, None)
    assert Message.objects.filter(conversation_id=first["conversation_id"]).count() == 1
    assert Conversation.objects.get(pk=first["conversation_id"]).last_message_at == touched
    assert BlacklistInterception.objects.get(tenant=tenant_a, platform_user_id="wx-u1").count == 1


def test_returning_customer_through_another_bot_is_answered_by_that_bot(tenant_a, bot_a):
    _, token, _ = bot_a
    other, other_token, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:9/other", name="astrbot-2")
    first = _post(token, "m-1")
    second = _post(other_token, "m-1")  # the other bot's own message ids are its own
    conversation = Conversation.objects.get(pk=first["conversation_id"])
    assert (second["conversation_id"], second["duplicate"]) == (conversation.id, False)
    assert (conversation.bot_instance_id, conversation.bot_name) == (other.id, "astrbot-2")


@pytest.mark.parametrize(
    "header",
    ["Bearer bot_not-a-real-token", "Bearer anm_not-a-bot-token", "Token abc", "Bearer"],
)
def test_bad_bot_token_is_401_and_nothing_stored(bot_a, header, anon):
    anon.credentials(HTTP_AUTHORIZATION=header)
    response = anon.post(URL, inbound("m-1"), format="json")
    assert response.status_code == 401
    assert Message.objects.count() == 0 and User.objects.filter(source="wecom").count() == 0


def test_missing_token_is_401(anon):
    assert_error(anon.post(URL, inbound("m-1"), format="json"), 401)


def test_user_token_cannot_post_bot_messages(bot_a, alice, as_user):
    assert_error(as_user(alice).post(URL, inbound("m-1"), format="json"), 401)
    assert Message.objects.count() == 0


def test_disabled_bot_and_suspended_tenant_are_refused(tenant_a, bot_a):
    bot, token, _ = bot_a
    BotInstance.objects.filter(pk=bot.pk).update(status="disabled")
    assert_error(bot_client(token).post(URL, inbound("m-1"), format="json"), 401, "bot_disabled")
    BotInstance.objects.filter(pk=bot.pk).update(status="active")
    tenant_a.status = "suspended"
    tenant_a.save()
    assert_error(bot_client(token).post(URL, inbound("m-1"), format="json"), 401, "tenant_not_active")
    assert Message.objects.count() == 0


def test_another_tenants_bot_writes_only_into_its_own_tenant(tenant_a, tenant_b, bot_a, bot_b):
    _, token_a, _ = bot_a
    _, token_b, _ = bot_b
    a = bot_client(token_a).post(URL, inbound("m-1"), format="json").json()
    b = bot_client(token_b).post(URL, inbound("m-1", content="beta"), format="json").json()
    assert a["conversation_id"] != b["conversation_id"]
    assert Message.objects.get(pk=a["message_id"]).tenant_id == tenant_a.id
    assert Message.objects.get(pk=b["message_id"]).tenant_id == tenant_b.id
    assert Message.objects.filter(tenant=tenant_a).count() == 1
    assert (
        User.objects.get(tenant=tenant_a, platform_user_id="wx-u1").id
        != User.objects.get(tenant=tenant_b, platform_user_id="wx-u1").id
    )


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"platform": "wecom", "user_id": "u", "type": "text", "message_id": "m"},  # text without content
        {"platform": "wecom", "user_id": "u", "type": "text", "content": "  ", "message_id": "m"},
        {"platform": "myspace", "user_id": "u", "type": "text", "content": "hi", "message_id": "m"},
        {"platform": "wecom", "user_id": "u", "type": "video", "content": "hi", "message_id": "m"},
        {"platform": "wecom", "user_id": "u", "type": "system", "content": "hi", "message_id": "m"},
        {"platform": "wecom", "user_id": "u", "type": "voice", "message_id": "m"},  # voice without file
        {"platform": "wecom", "user_id": "u" * 129, "type": "text", "content": "hi", "message_id": "m"},
        {"platform": "wecom", "user_id": "u", "type": "text", "content": "hi", "message_id": ""},
        [{"platform": "wecom"}],
    ],
)
def test_malformed_payload_is_400_and_nothing_stored(bot_a, payload):
    _, token, _ = bot_a
    response = bot_client(token).post(URL, payload, format="json")
    assert_error(response, 400)
    assert Message.objects.count() == 0 and Conversation.objects.count() == 0
    assert User.objects.filter(role="customer").count() == 0


def test_invalid_json_is_400(bot_a):
    _, token, _ = bot_a
    response = bot_client(token).generic("POST", URL, "{not json", content_type="application/json")
    assert_error(response, 400)
    assert Message.objects.count() == 0


def test_blocked_sender_creates_nothing_but_one_interception(
    tenant_a, alice, bot_a, django_capture_on_commit_callbacks
):
    # given a blacklisted WeChat user who never wrote before
    _, token, _ = bot_a
    BlacklistEntry.objects.create(tenant=tenant_a, platform="wecom", platform_user_id="wx-u1", reason="spam")
    customers_before = User.objects.filter(role="customer").count()

    # when their message arrives twice (the bot re-sends it)
    with django_capture_on_commit_callbacks(execute=True):
        response = bot_client(token).post(URL, inbound("m-1"), format="json")
        repeat = bot_client(token).post(URL, inbound("m-1"), format="json")

    # then no customer, conversation, message, welcome run, notification or job exists; one interception
    assert response.status_code == 202
    assert response.json() == {"conversation_id": None, "message_id": None, "duplicate": False, "blocked": True}
    assert repeat.json() == {"conversation_id": None, "message_id": None, "duplicate": True, "blocked": True}
    assert User.objects.filter(role="customer").count() == customers_before
    assert (Conversation.objects.count(), Message.objects.count(), AutomationRun.objects.count()) == (0, 0, 0)
    assert Notification.objects.count() == 0
    assert ReportingEvent.objects.count() == 0
    assert Job.objects.count() == 0
    stat = BlacklistInterception.objects.get(tenant=tenant_a, platform="wecom", platform_user_id="wx-u1")
    assert (stat.count, stat.last_source, stat.last_reason) == (1, "platform", "spam")
    assert _queued_tasks("workers.ai.auto_reply") == 0


def test_interceptions_are_listed_by_tenant_local_day(tenant_a, tenant_b, alice, bob, bot_a, as_user):
    # given a platform interception and a bot report, stamped 23:30 UTC = 07:30 the next day in Shanghai
    bot, token, _ = bot_a
    BlacklistEntry.objects.create(tenant=tenant_a, platform="wecom", platform_user_id="wx-u1")
    _post(token, "m-1")
    bot_client(token).post(
        "/api/v1/bot/events",
        {"event": "message_blocked", "platform": "wecom", "user_id": "wx-u2", "message_status": "blocked_by_blacklist"},
        format="json",
    )
    utc_evening = datetime(2026, 12, 6, 23, 30, tzinfo=UTC)
    InterceptionReport.objects.filter(tenant=tenant_a).update(created_at=utc_evening)
    url = "/api/v1/blacklist/interceptions"

    # when the admin asks for the Shanghai day 2026-12-07, then for 2026-12-06
    local_day = as_user(alice).get(url + "?from=2026-12-07&to=2026-12-07")
    day_before = as_user(alice).get(url + "?from=2026-12-06&to=2026-12-06")

    # then both are on the 7th, with their source; tenant B and consultants see none
    assert local_day.status_code == 200, local_day.json()
    rows = sorted(local_day.json()["results"], key=lambda r: r["user_id"])
    assert [(r["platform"], r["user_id"], r["source"]) for r in rows] == [
        ("wecom", "wx-u1", "platform"),
        ("wecom", "wx-u2", "bot_report"),
    ]
    assert local_day.json()["count"] == 2
    assert day_before.json()["count"] == 0
    assert as_user(bob).get(url).json()["count"] == 0
    assert_error(as_user(alice).get(url + "?from=2026-12-08&to=2026-12-07"), 400, "validation_error")


def test_nobody_online_queues_one_auto_reply_on_the_replies_queue(bot_a, django_capture_on_commit_callbacks):
    _, token, _ = bot_a
    with django_capture_on_commit_callbacks(execute=True):
        _post(token, "m-1")
    with django_capture_on_commit_callbacks(execute=True):
        _post(token, "m-2")  # a returning customer: the one-statement path on PostgreSQL
    assert _queued_tasks("workers.ai.auto_reply", queues=("replies",)) == 2
    assert _queued_tasks("workers.ai.auto_reply", queues=("default",)) == 0


def test_expired_entry_no_longer_blocks(tenant_a, bot_a):
    _, token, _ = bot_a
    BlacklistEntry.objects.create(
        tenant=tenant_a, platform="wecom", platform_user_id="wx-u1", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert bot_client(token).post(URL, inbound("m-1"), format="json").json()["blocked"] is False


def test_entry_on_another_tenant_does_not_block(tenant_b, bot_a):
    _, token, _ = bot_a
    BlacklistEntry.objects.create(tenant=tenant_b, platform="wecom", platform_user_id="wx-u1")
    assert bot_client(token).post(URL, inbound("m-1"), format="json").json()["blocked"] is False


# --- events, heartbeat, config, full pull -------------------------------------------------------


def test_message_blocked_report_is_counted_per_user(tenant_a, bot_a):
    bot, token, _ = bot_a
    report = {
        "event": "message_blocked",
        "user_id": "wx-9",
        "platform": "wecom",
        "message_status": "blocked_by_blacklist",
        "timestamp": "2026-11-21T10:00:00Z",
    }
    for _ in range(2):
        assert bot_client(token).post("/api/v1/bot/events", report, format="json").status_code == 202
    stat = BlacklistInterception.objects.get(tenant=tenant_a, platform_user_id="wx-9")
    assert (stat.count, stat.last_source) == (2, "bot")
    assert InterceptionReport.objects.filter(tenant=tenant_a, bot=bot).count() == 2


@pytest.mark.parametrize("payload", [{"event": "nope"}, {"event": "message_blocked", "platform": "wecom"}, {}])
def test_bad_event_is_400_and_nothing_stored(bot_a, payload):
    _, token, _ = bot_a
    assert_error(bot_client(token).post("/api/v1/bot/events", payload, format="json"), 400)
    assert BlacklistInterception.objects.count() == 0


def test_heartbeat_marks_the_bot_alive(bot_a):
    bot, token, _ = bot_a
    assert BotInstance.objects.get(pk=bot.pk).is_stale is True
    response = bot_client(token).post(
        "/api/v1/bot/events", {"event": "heartbeat", "status": {"im": "up"}}, format="json"
    )
    assert response.status_code == 202
    bot.refresh_from_db()
    assert bot.is_stale is False and bot.last_reported_status == {"im": "up"}
    assert bot_client(token).post("/api/v1/bot/heartbeat", {}, format="json").status_code == 200


def test_config_carries_the_blacklist_version_and_rules(alice, bot_a, as_user):
    from anmei.bots.models import GatewaySettings
    from anmei.conversations.models import ConversationSettings

    # given a tenant with one blacklisted user, a bot with a keyword rule and no settings rows
    bot, token, _ = bot_a
    as_user(alice).post("/api/v1/blacklist", {"platform": "wecom", "user_id": "x"}, format="json")
    BotInstance.objects.filter(pk=bot.pk).update(auto_reply_rules=[{"keyword": "价格", "reply": "请稍候"}])
    GatewaySettings.objects.filter(tenant_id=bot.tenant_id).delete()
    ConversationSettings.objects.filter(tenant_id=bot.tenant_id).delete()

    # when the bot pulls its configuration
    config = bot_client(token).get("/api/v1/bot/config").json()

    # then it carries the version, the rules and the default away message, and the read wrote nothing
    assert config["blacklist_version"] == 1
    assert config["auto_reply"] == {"enabled": True, "rules": [{"keyword": "价格", "reply": "请稍候"}]}
    assert config["away_message"] == "您好，客服暂时不在线，我们会尽快回复您。"
    assert config["config_version"] == 1
    assert GatewaySettings.objects.filter(tenant_id=bot.tenant_id).count() == 0
    assert ConversationSettings.objects.filter(tenant_id=bot.tenant_id).count() == 0


def test_full_pull_lists_entries_in_force_with_version(tenant_a, tenant_b, alice, bot_a, as_user):
    _, token, _ = bot_a
    client = as_user(alice)
    client.post("/api/v1/blacklist", {"platform": "wecom", "user_id": "a", "reason": "spam"}, format="json")
    client.post("/api/v1/blacklist", {"platform": "qq", "user_id": "b"}, format="json")
    BlacklistEntry.objects.create(
        tenant=tenant_a, platform="qq", platform_user_id="old", expires_at=timezone.now() - timedelta(minutes=1)
    )
    BlacklistEntry.objects.create(tenant=tenant_b, platform="qq", platform_user_id="other-tenant")
    body = bot_client(token).get("/api/v1/bot/blacklist").json()
    assert body["version"] == 2
    assert body["entries"] == [
        {"platform": "wecom", "user_id": "a", "reason": "spam", "expires_at": None},
        {"platform": "qq", "user_id": "b", "reason": "", "expires_at": None},
    ]


# --- lost enqueues are healed by the beat sweeps ------------------------------------------------


def _queued_args(name: str) -> list[list]:
    found = []
    for raw in get_redis().lrange("default", 0, -1):
        message = json.loads(raw)
        if message["headers"]["task"] == name:
            found.append(json.loads(base64.b64decode(message["body"]))[0])
    return found


def test_a_delivery_whose_enqueue_was_lost_is_resent_by_the_jobs_sweep(
    tenant_a, bot_a, django_capture_on_commit_callbacks
):
    from anmei.conversations.services import message_create
    from anmei.conversations.services.handoffs import message_deliver_schedule
    from anmei.jobs.models import Job
    from anmei.jobs.services import jobs_sweep

    # Given a stored bot message whose delivery job was written but never published (broker down)
    bot, _, _ = bot_a
    customer = User.objects.create(tenant=tenant_a, username="wecom:x", source="wecom", platform_user_id="x")
    conversation = Conversation.objects.create(tenant=tenant_a, customer=customer, bot_instance_id=bot.id)
    message, _ = message_create(conversation=conversation, sender_type="bot", content="欢迎")
    with django_capture_on_commit_callbacks(execute=False):
        message_deliver_schedule(tenant_id=tenant_a.id, message_id=message.id)
    job = Job.objects.get(kind="bots.delivery")
    assert (job.key, job.payload, job.state, job.tenant_id) == (
        f"message:{message.id}",
        {"message_id": message.id},
        "pending",
        tenant_a.id,
    )
    assert _queued_args("workers.bots.deliver_message") == []
    # When the sweep runs while the job is fresh, then once it has been due past the grace period
    fresh = jobs_sweep()
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=2))
    overdue = jobs_sweep()
    # Then only the overdue job is sent again, by its id
    assert (fresh, overdue) == (0, 1)
    assert _queued_args("workers.bots.deliver_message") == [[job.id]]


def test_a_bot_behind_its_tenants_version_is_pushed_again(tenant_a, bot_a, django_capture_on_commit_callbacks):
    from anmei.blacklist.services import blacklist_entry_add
    from anmei.bots.services.blacklist_push import blacklist_change_fan_out, blacklist_push_lagging
    from anmei.jobs.models import Job

    # Given a change (handed to the gateway as one job) whose push job for the bot ended without
    # the bot acknowledging it
    bot, _, _ = bot_a
    assert blacklist_push_lagging() == 0
    with django_capture_on_commit_callbacks(execute=False):
        blacklist_entry_add(tenant_id=tenant_a.id, actor=None, platform="wecom", user_id="x")
    change = Job.objects.get(kind="blacklist.change")
    assert (change.key, change.task, change.payload) == (
        f"tenant:{tenant_a.id}:v1",
        "workers.blacklist.fan_out",
        {"version": 1},
    )
    with django_capture_on_commit_callbacks(execute=False):
        assert blacklist_change_fan_out(tenant_id=tenant_a.id, version=1) == 1  # the hand-off job's body
    job = Job.objects.get(kind="blacklist.push")
    assert (job.key, job.payload) == (f"bot:{bot.id}:v1", {"bot_id": bot.id, "version": 1})
    Job.objects.filter(pk=job.pk).update(state="failed")
    # When the lagging beat runs
    with django_capture_on_commit_callbacks(execute=True):
        lagging = blacklist_push_lagging()
    # Then that job runs again from its first attempt, published by its id
    assert lagging == 1
    assert Job.objects.filter(pk=job.pk, state="pending", attempts=0).exists()
    assert _queued_args("workers.blacklist.push_to_bot") == [[job.id]]


# --- whatever a bot sends, never a 500 ----------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)
_fields = st.fixed_dictionaries(
    {},
    optional={
        "platform": st.sampled_from(["wecom", "qq", "bogus", ""]) | _json,
        "user_id": st.text(max_size=140) | _json,
        "type": st.sampled_from(["text", "image", "voice", "file", "system", "x"]) | _json,
        "content": st.text(max_size=50) | _json,
        "message_id": st.text(max_size=120) | _json,
        "nickname": st.text(max_size=80) | _json,
        "event": st.sampled_from(["message_blocked", "heartbeat", "status", "x"]) | _json,
        "timestamp": st.sampled_from(["2026-11-21T10:00:00Z", "yesterday", ""]) | _json,
        "status": _json,
    },
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_fields | _json)
def test_random_bot_payloads_never_cause_a_server_error(bot_a, body):
    _, token, _ = bot_a
    client = bot_client(token)
    for url in (URL, "/api/v1/bot/events", "/api/v1/bot/heartbeat"):
        response = client.post(url, body, format="json")
        assert response.status_code < 500, (url, body, response.content[:300])


@pytest.mark.parametrize("field", ["content", "user_id", "nickname", "message_id"])
def test_lone_surrogates_and_nul_are_refused_not_a_500(bot_a, field):
    _, token, _ = bot_a
    for bad in ("\\ud800", "\\u0000"):
        body = '{"platform": "wecom", "user_id": "u", "type": "text", "content": "hi", "message_id": "m"}'
        body = (
            body.replace(f'"{field}": "', f'"{field}": "x{bad}')
            if field != "nickname"
            else body.replace("{", '{"nickname": "x' + bad + '", ', 1)
        )
        response = bot_client(token).generic("POST", URL, body, content_type="application/json")
        assert_error(response, 400)
    assert Message.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_repeats_and_first_messages_store_one_customer_conversation_and_message(tenant_a):
    _, token, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:9")
    clients = [bot_client(token) for _ in range(8)]

    def post(i: int) -> tuple[int, dict]:
        # half repeat one message_id, half are other first messages of the same new user
        response = clients[i].post(URL, inbound("same" if i % 2 else f"other-{i}", user_id="wx-new"), format="json")
        return response.status_code, response.json()

    answers = race(8, post)

    assert [status for status, _ in answers] == [202] * 8
    assert User.objects.filter(tenant=tenant_a, platform_user_id="wx-new").count() == 1
    assert Conversation.objects.filter(tenant=tenant_a).count() == 1
    assert Message.objects.filter(external_id__endswith=":same").count() == 1
    assert Message.objects.count() == 5  # "same" once + 4 distinct ids
    assert len({body["message_id"] for _, body in answers}) == 5
    assert sum(body["duplicate"] for _, body in answers) == 3


@pytest.mark.django_db(transaction=True)
def test_concurrent_messages_of_a_returning_customer_on_both_paths_are_all_stored(tenant_a):
    """Same-customer messages racing through the one-statement and the general path (a nickname
    change takes the customer's row lock): no deadlock, no error, one conversation."""
    _, token, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:9")
    first = _post(token, "m-0", user_id="wx-back")
    clients = [bot_client(token) for _ in range(8)]

    def post(i: int) -> int:
        extra = {"nickname": f"改名{i}"} if i % 2 else {}
        return clients[i].post(URL, inbound(f"m-{i + 1}", user_id="wx-back", **extra), format="json").status_code

    statuses = race(8, post)

    assert statuses == [202] * 8
    assert Conversation.objects.filter(tenant=tenant_a).count() == 1
    assert Message.objects.filter(conversation_id=first["conversation_id"]).count() == 9
