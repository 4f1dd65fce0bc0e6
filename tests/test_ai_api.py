"""Agent config (write-only key), canned responses, LLM usage and the monthly quota: 80 % alert,
100 % fallback with an alert, never an error to the customer."""

from __future__ import annotations

from decimal import Decimal

import pytest

from anmei.ai.gateway import reply_generate
from anmei.ai.models import AgentCall, AgentConfig, CannedResponse
from anmei.ai.services.metering import agent_call_record
from anmei.conversations.models import Conversation
from anmei.notifications.models import AdminAlert
from tests.fixtures_ai import configure_agent, use_openai
from tests.helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_hashing")]


def test_agent_config_put_is_effective_and_the_key_write_only(tenant_a, alice, carol, bob, as_user):
    client = as_user(alice)
    # given the default (offline) agent
    before = client.get("/api/v1/admin/agent-config").json()
    assert (before["provider"], before["api_key_set"], before["monthly_token_quota"]) == ("local", False, 0)

    # when the admin switches to an OpenAI-compatible model with a key, a quota and prices
    response = client.put(
        "/api/v1/admin/agent-config",
        {
            "provider": "openai",
            "base_url": "https://llm.example/v1",
            "model": "gpt-x",
            "api_key": "sk-very-secret",
            "monthly_token_quota": 100000,
            "prices": {"prompt_per_1k": "0.5", "completion_per_1k": "1.5"},
        },
        format="json",
    )

    # then the answer shows that a key is set, never the key; it is stored encrypted
    assert response.status_code == 200
    body = response.json()
    assert "api_key" not in body and body["api_key_set"] is True
    assert (body["provider"], body["model"], body["monthly_token_quota"]) == ("openai", "gpt-x", 100000)
    assert body["prices"] == {"prompt_per_1k": "0.500000", "completion_per_1k": "1.500000"}
    stored = AgentConfig.objects.get(tenant=tenant_a)
    assert "sk-very-secret" not in stored.api_key_encrypted and stored.api_key == "sk-very-secret"
    # a PUT without api_key keeps it; "" clears it
    client.put("/api/v1/admin/agent-config", {"model": "gpt-y"}, format="json")
    assert AgentConfig.objects.get(tenant=tenant_a).api_key == "sk-very-secret"
    assert client.put("/api/v1/admin/agent-config", {"api_key": ""}, format="json").json()["api_key_set"] is False
    # bad input changes nothing; only the tenant's admin may touch it
    assert_error(client.put("/api/v1/admin/agent-config", {"provider": "gpt"}, format="json"), 400)
    assert_error(client.put("/api/v1/admin/agent-config", ["x"], format="json"), 400)
    assert AgentConfig.objects.get(tenant=tenant_a).provider == "openai"
    assert_error(as_user(carol).get("/api/v1/admin/agent-config"), 403)
    assert as_user(bob).get("/api/v1/admin/agent-config").json()["provider"] == "local"


def test_canned_responses_crud_tenant_scoped(tenant_a, tenant_b, alice, carol, bob, as_user):
    admin = as_user(alice)
    created = admin.post(
        "/api/v1/canned-responses",
        {"shortcode": "price", "text": "价格以面诊为准", "keywords": ["价格", " 价格 ", "多少钱"]},
        format="json",
    )
    assert created.status_code == 201
    item = created.json()
    assert (item["shortcode"], item["keywords"]) == ("price", ["价格", "多少钱"])
    assert_error(admin.post("/api/v1/canned-responses", {"shortcode": "price", "text": "x"}, format="json"), 409)
    assert_error(admin.post("/api/v1/canned-responses", {"shortcode": "a b", "text": "x"}, format="json"), 400)
    # consultants read and manage them too (from the console)
    assert [r["shortcode"] for r in as_user(carol).get("/api/v1/canned-responses").json()] == ["price"]
    mine = as_user(carol).post("/api/v1/canned-responses", {"shortcode": "x", "text": "x"}, format="json")
    assert mine.status_code == 201
    assert as_user(carol).delete(f"/api/v1/canned-responses/{mine.json()['id']}").status_code == 204
    # another tenant neither sees nor touches it
    assert as_user(bob).get("/api/v1/canned-responses").json() == []
    assert_error(as_user(bob).put(f"/api/v1/canned-responses/{item['id']}", {"text": "x"}, format="json"), 404)
    assert_error(as_user(bob).delete(f"/api/v1/canned-responses/{item['id']}"), 404)
    # update and delete
    updated = admin.put(f"/api/v1/canned-responses/{item['id']}", {"text": "欢迎预约面诊"}, format="json")
    assert updated.json()["text"] == "欢迎预约面诊"
    assert admin.delete(f"/api/v1/canned-responses/{item['id']}").status_code == 204
    assert not CannedResponse.objects.exists()


def _call(tenant, *, purpose: str, model: str, prompt: int, completion: int, config=None):
    return agent_call_record(
        tenant_id=tenant.id,
        provider="openai",
        purpose=purpose,
        customer_id=None,
        conversation_id=None,
        success=True,
        duration_ms=10,
        model=model,
        usage={"prompt_tokens": prompt, "completion_tokens": completion},
        config=config,
    )


def test_llm_usage_report_totals_groups_and_cost(tenant_a, tenant_b, alice, olga, as_user):
    config = configure_agent(tenant_a, monthly_token_quota=10000, price_prompt_per_1k=1, price_completion_per_1k=2)
    _call(tenant_a, purpose="summary", model="m1", prompt=100, completion=50, config=config)
    _call(tenant_a, purpose="suggestion", model="m1", prompt=300, completion=100, config=config)
    _call(tenant_b, purpose="summary", model="m1", prompt=999, completion=1)

    body = as_user(alice).get("/api/v1/admin/llm-usage?group_by=purpose").json()

    assert body["totals"] == {
        "calls": 2,
        "failed_calls": 0,
        "prompt_tokens": 400,
        "completion_tokens": 150,
        "total_tokens": 550,
        "cost": "0.700000",  # 400/1000 * 1 + 150/1000 * 2
    }
    assert body["quota"] == {"monthly_tokens": 10000, "used": 550, "remaining": 9450}
    assert [(r["purpose"], r["total_tokens"]) for r in body["rows"]] == [("suggestion", 400), ("summary", 150)]
    assert AgentCall.objects.get(purpose="summary", tenant=tenant_a).cost == Decimal("0.200000")
    # operators name the tenant; bad input is a 400
    assert_error(as_user(olga).get("/api/v1/admin/llm-usage"), 400, "tenant_required")
    assert as_user(olga).get(f"/api/v1/admin/llm-usage?tenant={tenant_b.id}").json()["totals"]["total_tokens"] == 1000
    assert_error(as_user(alice).get("/api/v1/admin/llm-usage?from=2026-02-10&to=2026-02-01"), 400, "invalid_range")
    assert_error(as_user(alice).get("/api/v1/admin/llm-usage?group_by=hour"), 400)


@pytest.mark.django_db(transaction=True)
def test_quota_edges_alert_at_80_and_fall_back_at_100_percent(tenant_a, carol, cathy, fake_openai):
    # given a quota of 1000 tokens, 780 already used, an LLM that reports 70 tokens per call
    config = use_openai(tenant_a, fake_openai, monthly_token_quota=1000)
    _call(tenant_a, purpose="reply", model="m", prompt=700, completion=80, config=config)
    conversation = Conversation.objects.create(tenant=tenant_a, customer=cathy, consultant=carol, status="active")
    assert not AdminAlert.objects.exists()  # 78 %: nothing yet

    def suggest():
        from anmei.ai.services.suggestions import suggestions_generate

        return suggestions_generate(conversation=conversation, message=None)

    # when a call takes it to 850 (85 %): one warning alert
    fake_openai.replies.append('{"suggestions": [{"kind": "comfort", "text": "别担心"}]}')
    assert suggest() == [{"kind": "comfort", "text": "别担心"}]
    assert list(AdminAlert.objects.values_list("code", "level")) == [("llm_quota_warning", "warning")]
    # when more calls reach 1000 (100 %): the exceeded alert, once
    _call(tenant_a, purpose="reply", model="m", prompt=100, completion=50, config=config)
    assert AdminAlert.objects.filter(code="llm_quota_exceeded").count() == 1
    # then LLM features fall back without calling the model, and nothing raises
    requests_before = len(fake_openai.requests)
    assert suggest() == []
    assert (
        reply_generate(tenant_id=tenant_a.id, customer_id=cathy.id, conversation_id=conversation.id, text="hi") is None
    )
    assert len(fake_openai.requests) == requests_before
    assert AdminAlert.objects.filter(code="llm_quota_exceeded").count() == 1
    assert AdminAlert.objects.filter(code="llm_quota_warning").count() == 1


def test_llm_usage_dates_are_days_in_the_tenant_time_zone(tenant_a, alice, as_user):
    from datetime import UTC, datetime

    from anmei.ai.models import AgentCall

    # given a call at 17:30 UTC on 6 December, which is 01:30 on 7 December in Shanghai
    config = configure_agent(tenant_a)
    _call(tenant_a, purpose="summary", model="m1", prompt=100, completion=50, config=config)
    AgentCall.objects.filter(tenant=tenant_a).update(created_at=datetime(2026, 12, 6, 17, 30, tzinfo=UTC))
    url = "/api/v1/admin/llm-usage?group_by=day"

    # when the admin asks for the Shanghai days of the 6th and of the 7th
    sixth = as_user(alice).get(url + "&from=2026-12-06&to=2026-12-06").json()
    seventh = as_user(alice).get(url + "&from=2026-12-07&to=2026-12-07").json()

    # then the call belongs to the 7th, as statistics count it
    assert sixth["totals"]["calls"] == 0
    assert seventh["totals"]["calls"] == 1
    assert [row["day"] for row in seventh["rows"]] == ["2026-12-07"]
