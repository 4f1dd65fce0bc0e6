"""The AstrBot plugin against a real AstrBot process and a live Anmei (daphne + a real Celery worker).

AstrBot runs from its own venv (tests/astrbot/build_env.sh, built by .ci/run) on loopback only and
is driven through its webchat Open API (`POST /api/v1/chat`), the way an IM user would talk to it.
Anmei's outside services stay fakes on 127.0.0.1 (speech to text, the OpenAI-compatible LLM that
AstrBot's provider is pointed at).
"""

from __future__ import annotations

import json
import shutil
import time

import pytest
import requests

from anmei.accounts.models import User
from anmei.asr.models import AsrTask
from anmei.blacklist.models import BlacklistInterception
from anmei.blacklist.services import blacklist_entry_add
from anmei.bots.models import BotDelivery, BotInstance
from anmei.bots.services import bot_create, gateway_settings_get_or_create
from anmei.conversations.models import Conversation, Message
from anmei.conversations.services import conversation_settings_get_or_create
from tests.fixtures_ai import configure_agent, summary_json
from tests.fixtures_astrbot import AstrBot, astrbot_venv
from tests.fixtures_bots import PUSH_PATH
from tests.helpers import poll

VENV = astrbot_venv()
pytestmark = [
    pytest.mark.skipif(VENV is None, reason="AstrBot venv missing: run tests/astrbot/build_env.sh (.ci/run builds it)"),
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("fast_hashing"),
    pytest.mark.timeout(600),
]

WAIT = 60  # seconds: a loaded 2-core machine, a real AstrBot, a real worker


@pytest.fixture(scope="module")
def _astrbot_install(tmp_path_factory, _browser_server):
    """One AstrBot data dir for the module (installed, dashboard key made); each test reconfigures it."""
    from tests.fakes.fake_openai import FakeOpenAI

    llm = FakeOpenAI().start()
    bot = AstrBot(
        VENV,
        tmp_path_factory.mktemp("astrbot"),
        plugin_config={"anmei_base_url": _browser_server.url, "bot_token": "", "bot_secret": "", "platform": "wecom"},
        llm_base_url=llm.url,
    )
    try:
        bot.first_boot()
        bot.stop()
        bot.llm = llm
        yield bot
    finally:
        bot.stop()
        llm.stop()


@pytest.fixture
def stack(_astrbot_install, web_server, celery_worker, settings, fake_asr):
    """A tenant with a consultant, an Anmei bot for the AstrBot instance, and AstrBot started with its token."""
    from tests.conftest import make_tenant, make_user

    settings.ASR_BACKEND = "openai-api"
    settings.ASR_MODEL = "sensevoice-small"
    settings.ASR_API_BASE_URL = fake_asr.url
    astrbot = _astrbot_install
    tenant = make_tenant("alpha")
    carol = make_user(tenant, "carol", User.Role.CONSULTANT, nickname="Carol")
    bot, token, secret = bot_create(
        tenant_id=tenant.id, name="astrbot", platform="wecom", callback_url=astrbot.callback_url
    )
    gateway = gateway_settings_get_or_create(tenant_id=tenant.id)
    gateway.retry_countdowns = [0.5, 1, 2, 2, 2]
    gateway.save()
    conversation_settings = conversation_settings_get_or_create(tenant_id=tenant.id)
    conversation_settings.auto_reply_enabled = False
    conversation_settings.save()
    astrbot.plugin_config.update(
        {"bot_token": token, "bot_secret": secret, "anmei_base_url": web_server.url, "retry_interval_seconds": 1}
    )
    shutil.rmtree(astrbot.data / "plugin_data", ignore_errors=True)  # a fresh plugin state per test
    astrbot.write_plugin_config()
    astrbot.llm.requests.clear()
    astrbot.start()
    try:
        yield {"astrbot": astrbot, "tenant": tenant, "carol": carol, "bot": bot, "token": token, "secret": secret}
    finally:
        astrbot.stop()
        if not web_server.process:
            web_server.start()


def _customer_messages(tenant, user_id: str):
    return Message.objects.filter(
        tenant=tenant, conversation__customer__platform_user_id=user_id, sender_type="customer"
    ).order_by("id")


def _webchat_has(astrbot: AstrBot, text: str) -> bool:
    """Whether AstrBot stored a bot message with `text` for a webchat session (its own SQLite)."""
    import sqlite3

    db = sqlite3.connect(astrbot.data / "data_v4.db")
    try:
        rows = db.execute("SELECT content FROM platform_message_history WHERE platform_id = 'webchat'").fetchall()
    finally:
        db.close()
    for (content,) in rows:
        try:
            content = json.loads(content)
        except (TypeError, ValueError):
            pass
        if text in json.dumps(content, ensure_ascii=False):
            return True
    return False


def test_text_and_voice_reach_the_console_and_the_reply_comes_back(stack, as_user, speech_wav):
    astrbot, tenant = stack["astrbot"], stack["tenant"]
    # when a WeChat-style user writes, then sends a voice message
    astrbot.chat("你好，我想咨询玻尿酸", username="wx-u1")
    attachment = astrbot.upload(speech_wav, "voice.wav", "audio/wav")
    astrbot.chat([{"type": "record", "attachment_id": attachment}], username="wx-u1")

    # then both are in Anmei, as one IM customer's conversation, the voice transcribed
    assert poll(lambda: _customer_messages(tenant, "wx-u1").count() == 2, timeout=WAIT)
    text, voice = _customer_messages(tenant, "wx-u1")
    assert (text.type, text.content) == ("text", "你好，我想咨询玻尿酸")
    assert voice.type == "voice" and voice.payload.get("asr_task_id")
    assert poll(lambda: AsrTask.objects.filter(status="success").exists(), timeout=WAIT)
    conversation = text.conversation
    assert conversation.customer.source == "wecom" and conversation.bot_instance_id == stack["bot"].id
    # and AstrBot's own LLM did not answer (Anmei owns the reply)
    assert astrbot.llm.requests == []

    # when the consultant answers in the console
    client = as_user(stack["carol"])
    assert client.post(f"/api/v1/conversations/{conversation.id}/claim").status_code == 200
    reply = client.post(
        f"/api/v1/conversations/{conversation.id}/messages",
        {"type": "text", "content": "您好，我是顾问Carol"},
        format="json",
    )
    assert reply.status_code == 201, reply.json()
    # then AstrBot accepted it for the webchat session, and Anmei recorded it sent once
    assert poll(lambda: BotDelivery.objects.filter(message_id=reply.json()["id"], status="sent").exists(), timeout=WAIT)
    assert poll(lambda: _webchat_has(astrbot, "您好，我是顾问Carol"), timeout=WAIT)
    assert BotDelivery.objects.get(message_id=reply.json()["id"]).attempts == 1

    # and a summary of the conversation is written by AstrBot's provider through llm/infer
    configure_agent(tenant, provider="astrbot", model="fake-gpt")
    astrbot.llm.default_reply = summary_json()
    assert client.post(f"/api/v1/conversations/{conversation.id}/end").status_code == 200
    from anmei.ai.models import ConversationSummary

    assert poll(
        lambda: ConversationSummary.objects.filter(conversation=conversation, status="ready").exists(), timeout=WAIT
    )
    summary = ConversationSummary.objects.get(conversation=conversation)
    assert "玻尿酸" in summary.main_issues
    assert astrbot.llm.requests, "AstrBot's provider was not asked"
    assert any("玻尿酸" in json.dumps(r["messages"], ensure_ascii=False) for r in astrbot.llm.requests)
    astrbot.llm.default_reply = None

    # and the plugin reports itself healthy; Anmei has its heartbeat
    health = astrbot.health()
    assert health["platform_connected"] is True and health["anmei_reachable"] is True
    assert poll(lambda: BotInstance.objects.get(pk=stack["bot"].pk).last_heartbeat_at is not None, timeout=WAIT)


def test_live_blacklist_push_blocks_the_next_message_and_reports_it(stack):
    astrbot, tenant = stack["astrbot"], stack["tenant"]
    astrbot.chat("在吗", username="wx-bad")
    assert poll(lambda: _customer_messages(tenant, "wx-bad").count() == 1, timeout=WAIT)

    # when the admin blacklists the user (pushed to the bot by the worker, signed)
    _, version = blacklist_entry_add(tenant_id=tenant.id, actor=None, platform="wecom", user_id="wx-bad")
    assert poll(lambda: astrbot.health()["blacklist_version"] == version, timeout=WAIT)

    # then the next message is not forwarded, not answered, and reported as blocked
    events = astrbot.chat("再问一次", username="wx-bad")
    assert not [e for e in events if e.get("type") == "plain" and e.get("data")]
    assert poll(
        lambda: BlacklistInterception.objects.filter(tenant=tenant, platform_user_id="wx-bad").exists(), timeout=WAIT
    )
    time.sleep(1)
    assert _customer_messages(tenant, "wx-bad").count() == 1
    assert astrbot.llm.requests == []


def test_forged_push_is_refused_and_changes_nothing(stack):
    astrbot = stack["astrbot"]
    before = astrbot.health()["blacklist_version"]
    body = json.dumps(
        {
            "config_type": "blacklist",
            "action": "add",
            "data": {"entries": [{"platform": "wecom", "user_id": "x"}]},
            "version": before + 1,
        }
    ).encode()
    from anmei.bots.services.instances import sign

    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Anmei-Timestamp": ts}
    url = astrbot.callback_url + PUSH_PATH
    forged = requests.post(url, data=body, headers={**headers, "X-Anmei-Signature": sign("bsec_wrong", ts, body)})
    assert forged.status_code == 401
    unsigned = requests.post(url, data=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    stale_ts = str(int(time.time()) - 600)
    stale = requests.post(
        url,
        data=body,
        headers={**headers, "X-Anmei-Timestamp": stale_ts, "X-Anmei-Signature": sign(stack["secret"], stale_ts, body)},
    )
    assert stale.status_code == 401
    good = {**headers, "X-Anmei-Signature": sign(stack["secret"], ts, body)}
    assert requests.post(url, data=body, headers=good).status_code == 200
    assert requests.post(url, data=body, headers=good).status_code == 401  # the same signature again: a replay
    assert astrbot.health()["blacklist_version"] == before + 1


def test_anmei_down_queues_on_disk_and_astrbot_restart_blocks_from_sqlite(stack, web_server):
    astrbot, tenant = stack["astrbot"], stack["tenant"]
    _, version = blacklist_entry_add(tenant_id=tenant.id, actor=None, platform="wecom", user_id="wx-bad")
    assert poll(lambda: astrbot.health()["blacklist_version"] == version, timeout=WAIT)

    # when Anmei is down, a customer writes twice and the blacklisted user once
    web_server.stop()
    astrbot.chat("第一条", username="wx-u2")
    astrbot.chat("第二条", username="wx-u2")
    astrbot.chat("我又来了", username="wx-bad")
    assert poll(lambda: astrbot.health()["queued_reports"] == 3, timeout=WAIT)
    assert not _customer_messages(tenant, "wx-u2").exists()

    # and AstrBot restarts while Anmei is still down: the blacklist comes from SQLite, before any pull
    astrbot.restart()
    health = astrbot.health()
    assert (health["blacklist_version"], health["queued_reports"], health["anmei_reachable"]) == (version, 3, False)
    astrbot.chat("还是我", username="wx-bad")
    assert poll(lambda: astrbot.health()["queued_reports"] == 4, timeout=WAIT)
    assert not [e for e in astrbot.chat("第三条", username="wx-u2") if e.get("type") == "plain" and e.get("data")]
    assert poll(lambda: astrbot.health()["queued_reports"] == 5, timeout=WAIT)

    # then once Anmei is back everything arrives, in order, none twice
    web_server.start()
    assert poll(lambda: astrbot.health()["queued_reports"] == 0, timeout=WAIT)
    assert [m.content for m in _customer_messages(tenant, "wx-u2")] == ["第一条", "第二条", "第三条"]
    assert poll(lambda: BlacklistInterception.objects.filter(platform_user_id="wx-bad", count=2).exists(), timeout=WAIT)
    interception = BlacklistInterception.objects.get(tenant=tenant, platform_user_id="wx-bad")
    assert (interception.count, interception.last_source) == (2, "bot")  # both reports, each once
    assert Conversation.objects.filter(tenant=tenant, customer__platform_user_id="wx-bad").count() == 0
