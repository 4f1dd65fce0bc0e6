"""The AI branch of the bot auto-reply: through the context builder to
an OpenAI-compatible model or to the bot's own LLM (AstrBot llm/infer, signed); failures → away."""

from __future__ import annotations

import pytest

from anmei.ai.models import AgentCall
from anmei.bots.models import BotInstance
from anmei.conversations.models import Message
from tests.fixtures_ai import configure_agent, use_openai
from tests.fixtures_bots import SEND_PATH, bot_client, inbound, make_bot
from tests.helpers import poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing", "no_automation")]


@pytest.fixture
def no_automation(tenant_a):
    """No registration welcome for the IM customers here: only auto-replies call the model."""
    from anmei.automation.services import automation_settings_get_or_create

    automation = automation_settings_get_or_create(tenant_id=tenant_a.id)
    automation.enabled = False
    automation.save()


def _auto_reply(token: str, message_id: str, content: str) -> Message:
    response = bot_client(token).post("/api/v1/bot/messages", inbound(message_id, content=content), format="json")
    assert response.status_code == 202, response.content
    incoming = response.json()["message_id"]
    assert poll(lambda: Message.objects.filter(external_id=f"autoreply:{incoming}").exists())
    return Message.objects.get(external_id=f"autoreply:{incoming}")


def test_nobody_online_the_llm_answers_with_the_conversation_as_context(
    tenant_a, fake_bot, fake_openai, automation_mcp_url, celery_worker
):
    # given an IM bot, nobody online, and an OpenAI-compatible model
    bot, token, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    use_openai(tenant_a, fake_openai)
    fake_openai.replies.extend(["玻尿酸一般可维持6到12个月。", "价格以面诊为准。"])

    # when the customer asks twice
    first = _auto_reply(token, "m-1", "玻尿酸能维持多久？")
    second = _auto_reply(token, "m-2", "那价格呢？")

    # then the model's answers are stored as AI auto-replies and sent through the bot
    assert (first.content, first.payload["source"]) == ("玻尿酸一般可维持6到12个月。", "ai")
    assert (second.content, second.payload["source"]) == ("价格以面诊为准。", "ai")
    assert fake_bot.wait_for(lambda _: len([r for r in fake_bot.requests(path=SEND_PATH)]) == 2)
    # and the second call carried the history: customer as user (delimited), the bot's reply as assistant
    assert [(m["role"], m["content"]) for m in fake_openai.requests[-1]["messages"][1:]] == [
        ("user", "<customer_message>玻尿酸能维持多久？</customer_message>"),
        ("assistant", "玻尿酸一般可维持6到12个月。"),
        ("user", "<customer_message>那价格呢？</customer_message>"),
    ]
    assert list(AgentCall.objects.values_list("purpose", "success")) == [("reply", True), ("reply", True)]

    # when the model fails, the customer gets the away message (never an error)
    fake_openai.mode = "error500"
    third = _auto_reply(token, "m-3", "在吗？")
    assert third.payload["source"] == "away"


def test_astrbot_provider_asks_the_bots_own_llm_signed(tenant_a, fake_bot, fake_astrbot_llm, celery_worker):
    # given the bot's callback is an AstrBot whose llm/infer we can see, and the astrbot provider
    bot, token, secret = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    BotInstance.objects.filter(pk=bot.pk).update(callback_url=fake_astrbot_llm.url)
    fake_astrbot_llm.secret = secret
    configure_agent(tenant_a, provider="astrbot", model="qwen-plus", app_id="dashscope")
    fake_astrbot_llm.replies.append("您好，热玛吉一次可维持一到两年。")

    reply = _auto_reply(token, "m-9", "热玛吉能维持多久")

    assert (reply.content, reply.payload["source"]) == ("您好，热玛吉一次可维持一到两年。", "ai")
    (sent,) = fake_astrbot_llm.requests  # signature checked by the fake (401 otherwise)
    assert sent["llm_config"] == {"provider": "dashscope", "model_id": "qwen-plus", "auth": {}}
    assert sent["context"][-1] == {"role": "user", "content": "<customer_message>热玛吉能维持多久</customer_message>"}
    assert sent["inference_params"]["stream"] is False
    assert sent["user_id_for_llm"].startswith(f"anmei-{tenant_a.id}-")
    call = AgentCall.objects.get()
    assert (call.provider, call.model, call.total_tokens) == ("astrbot", "astrbot-llm", 42)
