"""AI gateway: Dify and OpenAI-compatible agents over our MCP sidecar, fallbacks, breaker, usage."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from anmei.accounts.models import User
from anmei.ai import breaker
from anmei.ai.gateway import reply_generate, welcome_generate
from anmei.ai.models import AgentCall, AgentConfig
from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
from anmei.automation.models import AutomationRun
from anmei.conversations.models import Message
from tests.conftest import make_user
from tests.fixtures_automation import await_for, free_port, receive_type, register, wait_for, ws_connect

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("async_db_closed")]


def _configure(tenant, **fields):
    return agent_config_update(config=agent_config_get_or_create(tenant_id=tenant.id), **fields)


def _done(customer_id: int):
    return AutomationRun.objects.filter(customer_id=customer_id).exclude(status="running").first()


async def _full_flow(anon, carol, username: str, nickname: str):
    console = await ws_connect("/ws/console/", carol)
    created = await sync_to_async(register)(anon, username, nickname=nickname)
    customer = await User.objects.aget(pk=created["id"])
    customer_ws = await ws_connect("/ws/customer/", customer)
    welcome = await receive_type(customer_ws, "message.new", timeout=20)
    new_customer = await receive_type(console, "new_customer", timeout=20)
    run = await await_for(lambda: _done(customer.id))
    await console.disconnect()
    await customer_ws.disconnect()
    return customer, run, welcome, new_customer


async def test_dify_agent_reads_the_profile_over_mcp_and_writes_the_welcome(
    tenant_a, carol, anon, celery_worker, fake_dify
):
    await sync_to_async(_configure)(
        tenant_a, provider="dify", base_url=fake_dify.url, app_id="dify-app-1", api_key="app-dify-secret"
    )
    customer, run, welcome, new_customer = await _full_flow(anon, carol, "judy", "朱迪")

    assert run.status == "succeeded" and (run.welcome_source, run.welcome_provider) == ("agent", "dify")
    assert welcome["message"]["content"].startswith("朱迪，您好！")
    assert welcome["message"]["sender_type"] == "bot"
    assert new_customer["customer_id"] == customer.id
    sent = fake_dify.requests[0]["body"]
    assert (sent["response_mode"], sent["inputs"]["user_id"], sent["user"]) == (
        "blocking",
        str(customer.id),
        f"anmei-{tenant_a.id}-{customer.id}",
    )
    assert fake_dify.profiles[0]["nickname"] == "朱迪"  # fetched by the agent from our sidecar
    call = await AgentCall.objects.aget()
    assert (call.provider, call.purpose, call.success, call.customer_id) == ("dify", "welcome", True, customer.id)
    assert (call.prompt_tokens, call.completion_tokens, call.total_tokens, call.cost) == (
        120,
        40,
        160,
        Decimal("0.00032"),
    )


async def test_openai_agent_runs_the_tool_loop_against_our_mcp_server(
    tenant_a, carol, anon, celery_worker, fake_openai, automation_mcp_url
):
    await sync_to_async(_configure)(
        tenant_a, provider="openai", base_url=fake_openai.url + "/v1", model="fake-gpt", api_key="sk-fake-123"
    )
    customer, run, welcome, _ = await _full_flow(anon, carol, "kate", "Kate")

    assert run.status == "succeeded" and (run.welcome_source, run.welcome_provider) == ("agent", "openai")
    assert welcome["message"]["content"] == "亲爱的Kate，欢迎加入安美智享！我是您的AI美丽顾问，随时为您解答医美问题。"
    first, second = fake_openai.requests
    assert "get_user_profile" in {t["function"]["name"] for t in first["tools"]}
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and '"nickname": "Kate"' in tool_message["content"]
    call = await AgentCall.objects.aget()
    assert (call.provider, call.success, call.tool_calls, call.total_tokens, call.model) == (
        "openai",
        True,
        1,
        140,
        "fake-gpt",
    )


@pytest.mark.parametrize("failure", ["down", "error500", "slow"])
def test_agent_failure_falls_back_to_the_platform_profile_welcome_and_the_run_succeeds(
    failure, tenant_a, anon, celery_worker, fake_dify
):
    base_url = f"http://127.0.0.1:{free_port()}" if failure == "down" else fake_dify.url
    if failure == "error500":
        fake_dify.mode = "error500"
    if failure == "slow":
        fake_dify.latency = 1.5
    _configure(tenant_a, provider="dify", base_url=base_url, api_key="app-dify-secret", timeout_seconds=0.5)

    created = register(anon, f"lena-{failure}", nickname="Lena")
    run = wait_for(lambda: _done(created["id"]))

    assert run.status == "succeeded"
    # the agent could not answer: its template rendered with what the platform knows, not the generic one
    assert run.welcome_source == "agent" and run.welcome_text.startswith("Lena，您好！")
    assert Message.objects.get(external_id=f"welcome:{created['id']}").content == run.welcome_text
    call = AgentCall.objects.get()
    assert call.success is False and call.error
    assert run.agent_error == call.error
    expected = {"down": "dify unreachable", "error500": "dify answered 500", "slow": "timeout"}[failure]
    assert expected in call.error


def test_disabled_agent_uses_the_template_without_calling_anything(tenant_a, anon, celery_worker):
    _configure(tenant_a, enabled=False)
    created = register(anon, "mona", nickname="Mona")
    run = wait_for(lambda: _done(created["id"]))
    assert (run.status, run.welcome_source, run.agent_error) == ("succeeded", "template", "agent_disabled")
    assert AgentCall.objects.count() == 0


def test_breaker_opens_after_consecutive_failures_per_tenant_and_provider(tenant_a, tenant_b, fake_dify):
    fake_dify.mode = "error500"
    _configure(
        tenant_a,
        provider="dify",
        base_url=fake_dify.url,
        api_key="app-dify-secret",
        breaker_threshold=2,
        breaker_cooldown_seconds=30,
    )
    customer = make_user(tenant_a, "nora")

    outcomes = [
        welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None).error for _ in range(3)
    ]

    assert outcomes[0].startswith("dify answered 500") and outcomes[1].startswith("dify answered 500")
    assert outcomes[2] == "circuit_open"
    assert len(fake_dify.requests) == 2  # the third registration did not wait for a dead agent
    assert breaker.breaker_state(tenant_id=tenant_a.id, provider="dify")["state"] == "open"
    assert breaker.breaker_allows(tenant_id=tenant_b.id, provider="dify")
    assert breaker.breaker_allows(tenant_id=tenant_a.id, provider="openai")

    breaker.breaker_record_success(tenant_id=tenant_a.id, provider="dify")
    fake_dify.mode = "ok"
    assert breaker.breaker_allows(tenant_id=tenant_a.id, provider="dify")


def test_generate_reply_answers_with_the_llm_or_returns_none(tenant_a, fake_openai, automation_mcp_url):
    customer = make_user(tenant_a, "olive", nickname="Olive")
    assert reply_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=1, text="hi") is None  # local
    _configure(tenant_a, provider="openai", base_url=fake_openai.url, model="fake-gpt", api_key="sk-fake-123")
    reply = reply_generate(
        tenant_id=tenant_a.id,
        customer_id=customer.id,
        conversation_id=1,
        text=f"客户{customer.id}问：玻尿酸能维持多久?",
    )
    assert reply == "亲爱的Olive，欢迎加入安美智享！我是您的AI美丽顾问，随时为您解答医美问题。"
    fake_openai.mode = "error500"
    assert reply_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=1, text="hi") is None
    _configure(tenant_a, enabled=False)
    assert reply_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=1, text="hi") is None


def test_agent_secrets_are_stored_encrypted(tenant_a):
    config = _configure(tenant_a, provider="dify", api_key="app-very-secret", mcp_group_key="mcp_key_abc123")
    stored = AgentConfig.objects.values("api_key_encrypted", "mcp_group_key_encrypted").get(pk=config.pk)
    assert "app-very-secret" not in stored["api_key_encrypted"]
    assert "mcp_key_abc123" not in stored["mcp_group_key_encrypted"]
    fresh = AgentConfig.objects.get(pk=config.pk)
    assert (fresh.api_key, fresh.mcp_group_key) == ("app-very-secret", "mcp_key_abc123")


def test_local_agent_provisions_its_own_mcp_group_once(tenant_a, automation_mcp_url):
    from anmei.mcp_admin.models import MCPToolGroup

    customer = make_user(tenant_a, "pia", nickname="Pia")
    first = welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None)
    second = welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None)
    assert first.text and first.text.startswith("Pia，您好！") and second.text == first.text
    assert MCPToolGroup.objects.filter(tenant=tenant_a).count() == 1
    assert agent_config_get_or_create(tenant_id=tenant_a.id).mcp_group_key.startswith("mcp_key_")
