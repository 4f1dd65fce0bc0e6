"""The MCP sidecar's answers (read by LLM agents) carry placeholders, never a customer's phone or ID."""

from __future__ import annotations

import json

import pytest

from anmei.conversations.models import Conversation, Message
from tests.fixtures_mcp import make_mcp_group, mcp_call

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = "13912345678"
ID_NUMBER = "11010519491231002X"


def test_profile_and_messages_are_masked_in_tool_answers(mcp_sidecar, tenant_a, cathy):
    cathy.phone = f"+86 {PHONE}"
    cathy.email = "cathy.w@example.com"
    cathy.save(update_fields=["phone", "email"])
    conversation = Conversation.objects.create(tenant=tenant_a, customer=cathy, status="active", channel="web")
    Message.objects.create(
        tenant=tenant_a,
        conversation=conversation,
        sender_type="customer",
        sender=cathy,
        content=f"手机 {PHONE}，身份证 {ID_NUMBER}",
    )
    _, key = make_mcp_group(tenant_a)

    profile = mcp_call(mcp_sidecar.url, "get_user_profile", {"user_id": cathy.pk}, key=key)
    data = mcp_call(mcp_sidecar.url, "get_conversation_data", {"conversation_id": conversation.pk}, key=key)

    assert profile.is_error is False and data.is_error is False
    assert PHONE not in profile.structured_content["phone"]  # the profile tool already shows it partly hidden
    assert profile.structured_content["user_id"] == cathy.pk
    texts = [m["content"] for m in data.structured_content["messages"]]
    assert texts == ["手机 [PHONE_T1]，身份证 [ID_T1]"]
    for result in (profile, data):
        everything = json.dumps(result.structured_content, ensure_ascii=False) + "".join(c.text for c in result.content)
        assert PHONE not in everything and ID_NUMBER not in everything and "cathy.w@" not in everything
