"""Reply suggestions: pushed to the assigned consultant only, canned responses as templates and as the
offline fallback, one generation in flight per conversation with bursts coalesced, streaming deltas."""

from __future__ import annotations

import pytest

from anmei.ai.models import AgentCall, CannedResponse
from anmei.conversations.models import Conversation
from tests.conftest import make_user
from tests.fixtures_ai import suggestions_json, use_openai
from tests.helpers import assert_error, poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


def _active(tenant, customer, consultant) -> Conversation:
    return Conversation.objects.create(tenant=tenant, customer=customer, consultant=consultant, status="active")


def _send(client, conversation, text: str) -> int:
    response = client.post(
        f"/api/v1/conversations/{conversation.id}/messages", {"type": "text", "content": text}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()["id"]


def _canned(tenant):
    return CannedResponse.objects.create(
        tenant=tenant, shortcode="price", text="具体价格以面诊为准，欢迎预约免费面诊。", keywords=["价格", "多少钱"]
    )


def test_a_customer_message_brings_suggestions_to_the_assigned_consultant_only(
    listen, tenant_a, tenant_b, carol, cathy, ben, as_user, fake_openai, celery_worker
):
    # given Carol's active conversation, a canned response and an LLM
    dave = make_user(tenant_a, "dave", "consultant")
    _canned(tenant_a)
    _canned(tenant_b)
    use_openai(tenant_a, fake_openai)
    fake_openai.replies.append(
        suggestions_json(("comfort", "别担心，我们会为您详细说明。"), ("solution", "建议先面诊。"))
    )
    conversation = _active(tenant_a, cathy, carol)
    listener = listen(carol, dave, ben)

    # when the customer asks about the price
    message_id = _send(as_user(cathy), conversation, "玻尿酸价格是多少？")

    # then Carol gets the canned template first, then the model's suggestions; nobody else gets any
    event = listener.next(carol, "suggestion.new")
    assert event == {
        "type": "suggestion.new",
        "conversation_id": conversation.id,
        "message_id": message_id,
        "suggestions": [
            {"kind": "template", "text": "具体价格以面诊为准，欢迎预约免费面诊。"},
            {"kind": "comfort", "text": "别担心，我们会为您详细说明。"},
            {"kind": "solution", "text": "建议先面诊。"},
        ],
    }
    assert listener.next(dave, "suggestion.new", timeout=0.5) is None
    assert listener.next(ben, "suggestion.new", timeout=0.5) is None
    (sent,) = fake_openai.requests
    assert sent["messages"][-1] == {
        "role": "user",
        "content": "<customer_message>玻尿酸价格是多少？</customer_message>",
    }
    assert AgentCall.objects.get().purpose == "suggestion"


def test_a_burst_is_coalesced_into_one_more_generation_for_the_newest_message(
    listen, tenant_a, carol, cathy, as_user, fake_openai, celery_worker
):
    # given a slow LLM
    use_openai(tenant_a, fake_openai)
    fake_openai.latency = 1.0
    fake_openai.replies.extend([suggestions_json(("personalised", f"建议{i}")) for i in range(5)])
    conversation = _active(tenant_a, cathy, carol)
    listener = listen(carol)
    client = as_user(cathy)

    # when one message starts a generation and four more arrive while it runs
    first = _send(client, conversation, "第一条")
    assert poll(lambda: len(fake_openai.requests) == 1)
    later = [_send(client, conversation, f"第{i}条") for i in range(2, 6)]

    # then the first is answered, then one generation for the newest; nothing in between
    assert listener.next(carol, "suggestion.new")["message_id"] == first
    assert listener.next(carol, "suggestion.new")["message_id"] == later[-1]
    assert listener.next(carol, "suggestion.new", timeout=1.5) is None
    assert len(fake_openai.requests) == 2
    # and the next message after the burst starts a new generation at once (the lock was released)
    again = _send(client, conversation, "第六条")
    assert listener.next(carol, "suggestion.new")["message_id"] == again


def test_streaming_provider_sends_deltas_before_the_suggestions(
    listen, tenant_a, carol, cathy, as_user, fake_openai, celery_worker
):
    use_openai(tenant_a, fake_openai, stream=True)
    answer = suggestions_json(("personalised", "您好，玻尿酸一般可以维持六到十二个月，具体因人而异。"))
    fake_openai.replies.append(answer)
    conversation = _active(tenant_a, cathy, carol)
    listener = listen(carol)

    message_id = _send(as_user(cathy), conversation, "能维持多久？")

    first = listener.next(carol, "suggestion.delta")
    assert (first["conversation_id"], first["message_id"]) == (conversation.id, message_id)
    event = listener.next(carol, "suggestion.new")
    assert event["suggestions"] == [
        {"kind": "personalised", "text": "您好，玻尿酸一般可以维持六到十二个月，具体因人而异。"}
    ]
    assert fake_openai.requests[0]["stream"] is True
    assert AgentCall.objects.get().total_tokens == 70  # usage from the stream's final chunk


def test_on_demand_suggestions_and_the_offline_fallback(tenant_a, carol, cathy, ben, as_user, fake_openai):
    # given no LLM (the local agent) and a canned response
    _canned(tenant_a)
    dave = make_user(tenant_a, "dave", "consultant")
    conversation = _active(tenant_a, cathy, carol)
    from anmei.conversations.services import message_create

    message_create(conversation=conversation, sender_type="customer", content="热玛吉多少钱")
    url = f"/api/v1/conversations/{conversation.id}/suggestions"

    # when Carol asks: the canned response is the offline answer
    response = as_user(carol).post(url)
    assert response.status_code == 200
    assert response.json() == {"suggestions": [{"kind": "template", "text": "具体价格以面诊为准，欢迎预约免费面诊。"}]}
    # with an LLM that fails, the same fallback, and the failure is recorded
    use_openai(tenant_a, fake_openai)
    fake_openai.mode = "error500"
    assert as_user(carol).post(url).json() == response.json()
    assert AgentCall.objects.get().success is False
    # only the assigned consultant (or an admin), only in the tenant, only customers' helpers
    assert_error(as_user(dave).post(url), 403, "not_assigned")
    assert_error(as_user(ben).post(url), 404)
    assert_error(as_user(cathy).post(url), 403)
