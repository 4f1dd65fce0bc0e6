"""Masking end to end: a customer's phone and ID number never reach the fake LLM nor our logs."""

from __future__ import annotations

import json
import logging

import pytest

from anmei.ai.gateway import reply_generate
from anmei.ai.services.suggestions import suggestions_generate
from anmei.conversations.models import Conversation, Message
from tests.fixtures_ai import configure_agent, use_openai

pytestmark = [pytest.mark.django_db(transaction=True)]

PHONE = "13912345678"
ID_NUMBER = "11010519491231002X"


def _conversation(tenant, customer, consultant):
    conversation = Conversation.objects.create(tenant=tenant, customer=customer, consultant=consultant, status="active")
    Message.objects.create(
        tenant=tenant,
        conversation=conversation,
        sender_type="customer",
        content=f"我的手机是 {PHONE[:3]}-{PHONE[3:7]}-{PHONE[7:]}，身份证 {ID_NUMBER}，想预约玻尿酸",
    )
    return conversation


def _no_personal_data(text: str):
    flat = text.replace(" ", "").replace("-", "")
    assert PHONE not in flat and ID_NUMBER not in flat and ID_NUMBER.lower() not in flat


def test_openai_reply_is_masked_out_and_unmasked_back(tenant_a, carol, cathy, fake_openai, automation_mcp_url, caplog):
    use_openai(tenant_a, fake_openai)
    conversation = _conversation(tenant_a, cathy, carol)
    fake_openai.replies.append("好的，我们会致电[PHONE_1]确认，证件[ID_1]到店出示即可。")
    caplog.set_level(logging.DEBUG)

    reply = reply_generate(
        tenant_id=tenant_a.id,
        customer_id=cathy.id,
        conversation_id=conversation.id,
        text=f"再确认一下，电话 +86 {PHONE}",
    )

    assert reply == f"好的，我们会致电{PHONE[:3]}-{PHONE[3:7]}-{PHONE[7:]}确认，证件{ID_NUMBER}到店出示即可。"
    assert fake_openai.requests
    sent = json.dumps(fake_openai.requests, ensure_ascii=False)
    _no_personal_data(sent)
    assert "[PHONE_1]" in sent and "[ID_1]" in sent
    _no_personal_data("\n".join(r.getMessage() + json.dumps(r.__dict__, default=str) for r in caplog.records))


def test_dify_suggestions_are_masked(tenant_a, carol, cathy, fake_dify):
    configure_agent(tenant_a, provider="dify", base_url=fake_dify.url, app_id="dify-app-1", api_key="app-dify-secret")
    conversation = _conversation(tenant_a, cathy, carol)
    suggestions_generate(conversation=conversation, message=None)
    assert fake_dify.requests
    sent = json.dumps([r["body"] for r in fake_dify.requests], ensure_ascii=False)
    _no_personal_data(sent)
    assert "[PHONE_1]" in sent and "[ID_1]" in sent
