"""Tenant templates take `{name}` placeholders only, and a generated message is at most 2,000
characters (API.md "Hardening promises"): a format spec once made a 5,000,000-character welcome."""

from __future__ import annotations

import pytest

from anmei.ai.gateway import reply_generate, welcome_generate
from anmei.ai.models import AgentConfig
from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
from tests.conftest import make_user
from tests.helpers import assert_error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("async_db_closed")]


def _template(tenant, template: str) -> None:
    """Store a template as an older release could have (the save-time check is bypassed)."""
    agent_config_update(config=agent_config_get_or_create(tenant_id=tenant.id), welcome_template=template)


def test_a_format_spec_in_a_stored_template_stays_literal_and_amplifies_nothing(tenant_a, automation_mcp_url):
    customer = make_user(tenant_a, "pia", nickname="Pia")
    _template(tenant_a, "{nickname:*>5000000}欢迎{nickname}")

    outcome = welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None)

    assert outcome.text == "{nickname:*>5000000}欢迎Pia"


def test_attribute_index_conversion_and_unknown_placeholders_stay_literal(tenant_a, automation_mcp_url):
    customer = make_user(tenant_a, "pia", nickname="Pia")
    _template(tenant_a, "{nickname.__class__}{nickname[0]}{nickname!r}{0}{unknown}{{nickname}}，{nickname}您好")

    outcome = welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None)

    assert outcome.text == "{nickname.__class__}{nickname[0]}{nickname!r}{0}{unknown}{nickname}，Pia您好"


def test_a_rendered_welcome_is_capped_at_2000_characters(tenant_a, automation_mcp_url):
    customer = make_user(tenant_a, "pia", nickname="P" * 64)
    _template(tenant_a, "{nickname}" * 400)  # 4,000 characters written, 25,600 rendered

    outcome = welcome_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=None)

    assert outcome.text == "P" * 2000


def test_a_generated_reply_is_capped_at_2000_characters(tenant_a, fake_openai, automation_mcp_url):
    customer = make_user(tenant_a, "olive", nickname="Olive")
    agent_config_update(
        config=agent_config_get_or_create(tenant_id=tenant_a.id),
        provider="openai",
        base_url=fake_openai.url,
        model="fake-gpt",
        api_key="sk-fake-123",
    )
    fake_openai.replies.append("长" * 5000)

    reply = reply_generate(tenant_id=tenant_a.id, customer_id=customer.id, conversation_id=1, text="hi")

    assert reply == "长" * 2000


@pytest.mark.parametrize(
    "template",
    [
        "{nickname:*>5000000}",
        "{nickname!r}",
        "{nickname.__class__.__init__}",
        "{nickname[0]}",
        "{0}",
        "{}",
        "{ nickname }",
    ],
)
def test_agent_config_refuses_a_template_with_anything_but_name_placeholders(as_user, alice, template):
    before = agent_config_get_or_create(tenant_id=alice.tenant_id).welcome_template

    response = as_user(alice).put("/api/v1/admin/agent-config", {"welcome_template": template}, format="json")

    error = assert_error(response, 400, "validation_error")
    assert "welcome_template" in str(error["details"])
    assert AgentConfig.objects.get(tenant_id=alice.tenant_id).welcome_template == before


def test_agent_config_takes_name_placeholders_and_literal_braces(as_user, alice):
    template = "{nickname}，您好！{{活动}}请回复{username}"

    response = as_user(alice).put("/api/v1/admin/agent-config", {"welcome_template": template}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["welcome_template"] == template
    from anmei.ai.templating import template_render

    assert template_render(template, {"nickname": "Pia", "username": "pia"}) == "Pia，您好！{活动}请回复pia"
