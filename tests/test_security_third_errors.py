"""Errors shown to tenants carry a category and an HTTP status, never an upstream body (API.md
"Hardening promises"): the body goes, scrubbed, to our logs only."""

from __future__ import annotations

import logging

import pytest

from anmei.ai.gateway import agent_run
from anmei.ai.models import AgentCall
from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
from anmei.bots.models import BotInstance
from tests.conftest import make_user
from tests.fixtures_bots import make_bot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]

DASHBOARD = "/api/v1/admin/registration-automation/dashboard"


def _errors_shown(client) -> list[str]:
    response = client.get(DASHBOARD)
    assert response.status_code == 200, response.content
    return [e["error"] for e in response.json()["recent_errors"]]


@pytest.mark.parametrize(("purpose", "stream"), [("summary", False), ("summary", True), ("suggestion", True)])
def test_an_openai_error_body_reaches_neither_agent_calls_nor_the_dashboard(
    as_user, alice, fake_openai, caplog, purpose, stream
):
    customer = make_user(alice.tenant, "olive", nickname="Olive")
    agent_config_update(
        config=agent_config_get_or_create(tenant_id=alice.tenant_id),
        provider="openai",
        base_url=fake_openai.url,
        model="fake-gpt",
        api_key="sk-fake-123",
        stream=stream,
    )
    fake_openai.mode = "error500"  # answers {"error": {"message": "The server had an error", ...}}

    with caplog.at_level(logging.WARNING, logger="anmei.ai"):
        outcome = agent_run(
            tenant_id=alice.tenant_id,
            customer_id=customer.id,
            conversation_id=None,
            purpose=purpose,
            query="hi",
            on_delta=(lambda fragment: None) if stream else None,
        )

    assert (outcome.text, outcome.error) == (None, "model answered 500")
    assert list(AgentCall.objects.values_list("error", flat=True)) == ["model answered 500"]
    assert "The server had an error" not in " ".join(_errors_shown(as_user(alice)))
    # the body is in our own log, for us
    assert any("The server had an error" in str(getattr(r, "body", "")) for r in caplog.records)


def test_an_astrbot_error_body_reaches_neither_agent_calls_nor_the_dashboard(as_user, alice, fake_astrbot_llm):
    bot, _token, secret = make_bot(alice.tenant, callback_url=fake_astrbot_llm.url)
    fake_astrbot_llm.secret = secret
    fake_astrbot_llm.mode = "error500"  # answers {"error": "llm provider failed"}
    agent_config_update(config=agent_config_get_or_create(tenant_id=alice.tenant_id), provider="astrbot", model="m")
    customer = make_user(alice.tenant, "olive", nickname="Olive")
    assert BotInstance.objects.filter(pk=bot.pk, status=BotInstance.Status.ACTIVE).exists()

    outcome = agent_run(
        tenant_id=alice.tenant_id, customer_id=customer.id, conversation_id=None, purpose="summary", query="hi"
    )

    assert (outcome.text, outcome.error) == (None, "bot answered 500")
    assert list(AgentCall.objects.values_list("error", flat=True)) == ["bot answered 500"]
    assert "llm provider failed" not in " ".join(_errors_shown(as_user(alice)))
