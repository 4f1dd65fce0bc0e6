"""The MCP sidecar down: welcomes stay personal, and a recovered agent is used again within seconds."""

from __future__ import annotations

import pytest

from anmei.ai import breaker
from anmei.ai.gateway import welcome_generate
from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
from tests.conftest import make_user
from tests.fixtures_automation import free_port
from tests.helpers import poll

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_the_local_agent_writes_a_personal_welcome_when_the_profile_tool_is_down(tenant_a, tenant_b, settings):
    # given the MCP sidecar down (nothing listens where MCP_URL points)
    settings.MCP_URL = f"http://127.0.0.1:{free_port()}/mcp"
    customer = make_user(tenant_a, "qiao", nickname="小乔", source="wecom")
    make_user(tenant_b, "other", nickname="外人")
    # when the welcome is written
    outcome = welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None)
    # then it greets the customer by the nickname the platform knows, and says where it came from
    assert not outcome.error
    assert outcome.text.startswith("小乔，您好！")
    assert outcome.model == "local-template-platform-profile"
    # and a customer id of another tenant is never read into it
    stranger = make_user(tenant_b, "stranger", nickname="陌生人")
    other = welcome_generate(tenant_id=tenant_a.id, customer_id=stranger.id, conversation_id=None)
    assert other.text is None or "陌生人" not in other.text


def test_an_open_breaker_probes_the_agent_within_seconds_and_closes_on_success(tenant_a, fake_dify, settings):
    # given an agent that failed until its breaker opened for 30 s, probes every half second
    settings.AI_BREAKER_PROBE_SECONDS = 0.5
    fake_dify.mode = "error500"
    config = agent_config_get_or_create(tenant_id=tenant_a.id)
    agent_config_update(
        config=config,
        provider="dify",
        base_url=fake_dify.url,
        api_key="app-dify-secret",
        breaker_threshold=2,
        breaker_cooldown_seconds=30,
    )
    customer = make_user(tenant_a, "rui")

    def welcome():
        return welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None)

    assert [welcome().error[:4] for _ in range(2)] == ["dify", "dify"]
    assert welcome().error == "circuit_open"  # within the probe interval: no call
    # when the agent recovers
    fake_dify.mode = "ok"
    # then a probe reaches it well before the cool-down ends, and the breaker closes
    recovered = poll(lambda: not (outcome := welcome()).error and not outcome.degraded, timeout=10, interval=0.1)
    assert recovered
    assert breaker.breaker_state(tenant_id=tenant_a.id, provider="dify")["state"] == "closed"
    assert not welcome().error
