"""External agents degrade in steps, like the built-in one (docs/architecture.md, "Degradation").

The MCP part failing (the sidecar down) still gives a welcome by name, written by the agent from
what the platform knows; the agent itself failing gives its template rendered with those facts;
the generic automation template comes last, and not while a retry still fits in the welcome's bound.
"""

from __future__ import annotations

import pytest

from anmei.ai.gateway import welcome_generate
from anmei.ai.models import AgentConfig
from anmei.automation.models import DEFAULT_WELCOME_TEMPLATE, AutomationRun, AutomationStep
from anmei.automation.services import automation_settings_update
from tests.conftest import make_user
from tests.fakes.fake_dify import FakeDify
from tests.fixtures_ai import configure_agent, use_openai
from tests.fixtures_automation import free_port, register, wait_for

pytestmark = [pytest.mark.django_db(transaction=True)]


def _dead_mcp(settings) -> str:
    settings.MCP_URL = url = f"http://127.0.0.1:{free_port()}/mcp"  # nothing listens there
    return url


def test_openai_agent_writes_the_welcome_from_platform_facts_when_the_mcp_sidecar_is_down(
    tenant_a, tenant_b, fake_openai, settings
):
    # given an OpenAI-compatible agent and the MCP sidecar down
    _dead_mcp(settings)
    use_openai(tenant_a, fake_openai)
    customer = make_user(tenant_a, "qiao", nickname="小乔", source="wecom")
    # when the welcome is written
    outcome = welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None)
    # then the model wrote it by name, from the platform's facts, without tools, and no failure counts
    assert (outcome.error, outcome.degraded) == ("", False)
    assert outcome.text == "亲爱的小乔，欢迎加入安美智享！我是您的AI美丽顾问，随时为您解答医美问题。"
    assert outcome.model == "fake-gpt+platform-profile"
    asked = fake_openai.requests[-1]
    assert "tools" not in asked
    assert "客户昵称：小乔" in asked["messages"][0]["content"] and "注册渠道：wecom" in asked["messages"][0]["content"]
    # and a customer id of another tenant never brings that tenant's facts into the prompt
    stranger = make_user(tenant_b, "stranger", nickname="陌生人")
    welcome_generate(tenant_id=tenant_a.id, customer_id=stranger.id, conversation_id=None)
    assert all("陌生人" not in str(request) for request in fake_openai.requests)


def test_dify_agent_greets_by_name_from_its_inputs_when_its_profile_tool_fails(tenant_a, settings):
    # given a Dify app whose MCP tool points at a sidecar that is down
    dify = FakeDify(app_key="app-dify-secret", mcp_url=_dead_mcp(settings), mcp_key="any").start()
    try:
        configure_agent(tenant_a, provider="dify", base_url=dify.url, api_key="app-dify-secret")
        customer = make_user(tenant_a, "qiao", nickname="小乔", source="wecom")
        # when the welcome is written
        outcome = welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None)
        # then Dify was told the platform's facts and greeted by them
        inputs = dify.requests[0]["body"]["inputs"]
        assert (inputs["nickname"], inputs["channel"]) == ("小乔", "wecom")
        assert (outcome.error, outcome.degraded) == ("", False)
        assert outcome.text.startswith("小乔，您好！欢迎来到安美智享")
    finally:
        dify.stop()


def test_an_agent_that_cannot_answer_still_gives_a_welcome_by_name(tenant_a, tenant_b, fake_dify):
    # given a Dify agent that answers 500
    fake_dify.mode = "error500"
    configure_agent(tenant_a, provider="dify", base_url=fake_dify.url, api_key="app-dify-secret")
    customer = make_user(tenant_a, "qiao", nickname="小乔")
    # when the welcome is written
    outcome = welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None)
    # then the failure is reported, and the welcome is the agent template rendered from the platform
    assert outcome.error == "dify answered 500" and outcome.degraded
    assert outcome.text.startswith("小乔，您好！欢迎来到安美智享！")
    # and another tenant's customer is never rendered into it
    stranger = make_user(tenant_b, "stranger", nickname="陌生人")
    other = welcome_generate(tenant_id=tenant_a.id, customer_id=stranger.id, conversation_id=None)
    assert other.text is None or "陌生人" not in other.text


def _nothing_but_the_agent(tenant, fake_dify, countdowns, settings, bound):
    """A Dify agent whose platform-profile step renders nothing (an empty agent template)."""
    configure_agent(tenant, provider="dify", base_url=fake_dify.url, api_key="app-dify-secret")
    AgentConfig.objects.filter(tenant=tenant).update(welcome_template="")
    automation_settings_update(tenant_id=tenant.id, retry_countdowns=countdowns, max_retries=3)
    settings.AUTOMATION_WELCOME_BOUND_SECONDS = bound


def _run_of(customer_id: int):
    return AutomationRun.objects.filter(customer_id=customer_id).exclude(status="running").first()


def test_an_agent_failure_is_retried_within_the_bound_instead_of_storing_the_template(
    tenant_a, anon, celery_worker, fake_dify, settings
):
    # given an agent that fails once, and a retry schedule that fits in the welcome's bound
    _nothing_but_the_agent(tenant_a, fake_dify, [0.2], settings, bound=600)
    fake_dify.fail_next = 1
    # when a customer registers
    created = register(anon, "lena", nickname="Lena")
    run = wait_for(lambda: _run_of(created["id"]))
    # then the step was retried and the agent's own welcome stored, not the generic template
    assert run.status == "succeeded" and run.welcome_source == "agent"
    assert run.welcome_text.startswith("Lena，您好！")
    failed = AutomationStep.objects.filter(run=run, step="generate_welcome", success=False).count()
    assert failed == 1 and len(fake_dify.requests) == 2


def test_the_generic_template_is_the_last_step_once_no_retry_fits_the_bound(
    tenant_a, anon, celery_worker, fake_dify, settings
):
    # given an agent down and a retry schedule longer than the welcome's bound
    _nothing_but_the_agent(tenant_a, fake_dify, [5], settings, bound=3)
    fake_dify.mode = "error500"
    # when a customer registers
    created = register(anon, "mona", nickname="Mona")
    run = wait_for(lambda: _run_of(created["id"]))
    # then the generic template is stored at once (the customer is greeted in time), without a retry
    assert (run.status, run.welcome_source, run.welcome_text) == ("succeeded", "template", DEFAULT_WELCOME_TEMPLATE)
    assert not AutomationStep.objects.filter(run=run, step="generate_welcome", success=False).exists()
