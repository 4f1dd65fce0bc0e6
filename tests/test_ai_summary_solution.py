"""The local summary's 解决方案 is the consultant's advice (or the bot's answers where nobody else
replied), never the bot's welcome."""

from __future__ import annotations

import pytest

from anmei.ai.models import ConversationSummary
from anmei.ai.services.summaries import summary_generate
from anmei.conversations.models import Conversation, Message

pytestmark = pytest.mark.django_db

WELCOME = "您好朵拉，欢迎来到安美医美！我是您的专属顾问助手，请问今天想了解哪个项目？"


def _conversation(tenant, customer, consultant=None) -> Conversation:
    conversation = Conversation.objects.create(
        tenant=tenant, customer=customer, consultant=consultant, status="ended", channel="web"
    )
    Message.objects.create(
        tenant=tenant,
        conversation=conversation,
        sender_type="bot",
        content=WELCOME,
        payload={"kind": "welcome", "source": "template"},
    )
    Message.objects.create(
        tenant=tenant, conversation=conversation, sender_type="customer", sender=customer, content="玻尿酸能维持多久？"
    )
    return conversation


def _say(conversation, sender_type, text, sender=None):
    Message.objects.create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        sender_type=sender_type,
        sender=sender,
        content=text,
    )


def _summary(conversation) -> ConversationSummary:
    summary = summary_generate(conversation_id=conversation.id, generation=1)
    assert summary is not None and summary.model == "local-extractive"
    return summary


def test_the_solution_is_the_consultants_advice_not_the_welcome(tenant_a, cathy, carol):
    conversation = _conversation(tenant_a, cathy, consultant=carol)
    _say(conversation, "consultant", "玻尿酸一般维持6到12个月，建议到院面诊后选择产品。", sender=carol)

    summary = _summary(conversation)

    assert summary.solution == "玻尿酸一般维持6到12个月，建议到院面诊后选择产品。"
    assert "欢迎" not in summary.solution
    assert summary.evaluation == "客户消息1条，客服/机器人回复2条；客户的最后一个问题已得到回复。"


def test_without_a_consultant_the_bots_answer_is_the_solution_never_its_welcome(tenant_a, cathy):
    conversation = _conversation(tenant_a, cathy)
    _say(conversation, "bot", "玻尿酸通常可维持半年到一年。")

    assert _summary(conversation).solution == "玻尿酸通常可维持半年到一年。"


def test_with_only_the_welcome_the_solution_says_no_advice_was_given(tenant_a, cathy):
    conversation = _conversation(tenant_a, cathy)

    assert _summary(conversation).solution == "（顾问未给出建议）"
