"""analyze_customer (MCP, over the SDK client) cuts keywords with the hot words' jieba tokenizer and
clinic dictionary: whole clinic terms, never character bigrams."""

from __future__ import annotations

from anmei.conversations.models import Conversation, Message
from anmei.stats.services.terms import words_of
from tests.fixtures_mcp import make_mcp_group, mcp_call


def test_analyze_customer_keywords_are_clinic_words_not_bigrams(mcp_sidecar, tenant_a, cathy):
    # given Cathy's questions about fillers and anaesthesia
    _, key = make_mcp_group(tenant_a)
    conversation = Conversation.objects.create(tenant=tenant_a, customer=cathy, status="waiting", channel="web")
    texts = ["做玻尿酸会不会打麻药？", "玻尿酸会不会很疼", "热玛吉和玻尿酸哪个好"]
    for text in texts:
        Message.objects.create(
            tenant=tenant_a, conversation=conversation, sender_type="customer", sender=cathy, content=text
        )

    # when an agent asks the sidecar to analyse her
    analysis = mcp_call(mcp_sidecar.url, "analyze_customer", {"user_id": cathy.pk}, key=key).structured_content

    # then the keywords are the clinic terms, counted by the messages using them
    assert analysis["top_keywords"] == [
        {"keyword": "玻尿酸", "count": 3},
        {"keyword": "热玛吉", "count": 1},
        {"keyword": "麻药", "count": 1},
    ]
    # and they are exactly what the statistics' hot words would count for the same messages
    assert {k["keyword"] for k in analysis["top_keywords"]} == set().union(*(words_of(t) for t in texts))
