"""Admin API under /api/v1/mcp-config/ (API.md), key audit, metrics, subject tokens and Django admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from anmei.common.crypto import hash_token
from anmei.mcp_admin.models import MCPCallLog, MCPKeyAudit, MCPTool, MCPToolGroup
from anmei.mcp_admin.selectors.access import CallRefused, mcp_call_authorize
from anmei.mcp_admin.services import mcp_group_create
from anmei.mcp_admin.subject import SubjectTokenError, subject_token_issue, subject_token_verify
from anmei.tenants.models import Tenant

pytestmark = pytest.mark.django_db

GROUPS = "/api/v1/mcp-config/groups"
TOOLS = "/api/v1/mcp-config/tools"
METRICS = "/api/v1/mcp-config/metrics"
ALL_TOOLS = ["analyze_customer", "get_business_metrics", "get_conversation_data", "get_user_profile"]


def test_tenant_admin_creates_a_group_and_sees_its_key_once(as_user, alice, tenant_a):
    response = as_user(alice).post(GROUPS, {"name": "dify", "description": "Dify agents"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "dify" and body["tenant_id"] == tenant_a.pk and body["enabled"] is True
    assert body["api_key"].startswith("mcp_key_") and len(body["api_key"]) == len("mcp_key_") + 43
    assert body["tools"] == ALL_TOOLS  # the tenant's first group receives its tool rows
    group = MCPToolGroup.objects.get(pk=body["id"])
    assert group.key_hash == hash_token(body["api_key"])
    assert body["api_key"] not in group.key_encrypted
    assert group.created_by == alice
    listed = as_user(alice).get(GROUPS).json()
    assert [g["name"] for g in listed] == ["dify"]
    assert "api_key" not in listed[0]


def test_group_with_named_tools_takes_them_from_the_first_group(as_user, alice, tenant_a):
    first, _ = mcp_group_create(tenant=tenant_a, name="first")

    response = as_user(alice).post(GROUPS, {"name": "metrics", "tool_names": ["get_business_metrics"]}, format="json")

    assert response.status_code == 201
    assert response.json()["tools"] == ["get_business_metrics"]
    assert sorted(first.tools.values_list("tool_name", flat=True)) == [
        "analyze_customer",
        "get_conversation_data",
        "get_user_profile",
    ]
    assert MCPTool.objects.filter(tenant=tenant_a).count() == 4


@pytest.mark.parametrize(
    "body, code",
    [
        ({}, "validation_error"),
        ({"name": "x", "tool_names": ["rm_rf"]}, "validation_error"),
        ({"name": "taken"}, "group_name_taken"),
        ([1, 2], "validation_error"),
    ],
)
def test_bad_group_input_is_a_4xx_and_writes_nothing(as_user, alice, tenant_a, body, code):
    mcp_group_create(tenant=tenant_a, name="taken")

    response = as_user(alice).post(GROUPS, body, format="json")

    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] == code
    assert MCPToolGroup.objects.count() == 1


def test_operator_must_name_the_tenant_and_sees_all_tenants(as_user, olga, tenant_a, tenant_b):
    mcp_group_create(tenant=tenant_b, name="beta-group")

    missing = as_user(olga).post(GROUPS, {"name": "ops"}, format="json")
    created = as_user(olga).post(GROUPS, {"name": "ops", "tenant": tenant_a.pk}, format="json")

    assert missing.status_code == 400 and MCPToolGroup.objects.filter(name="ops").count() == 1
    assert created.status_code == 201 and created.json()["tenant_id"] == tenant_a.pk
    assert sorted(g["name"] for g in as_user(olga).get(GROUPS).json()) == ["beta-group", "ops"]
    assert [g["name"] for g in as_user(olga).get(GROUPS, {"tenant": tenant_b.pk}).json()] == ["beta-group"]


def test_consultants_and_customers_cannot_use_the_mcp_admin_api(as_user, carol, cathy, anon):
    for client in (as_user(carol), as_user(cathy)):
        assert client.get(GROUPS).status_code == 403
        assert client.post(GROUPS, {"name": "x"}, format="json").status_code == 403
    assert anon.get(GROUPS).status_code == 401
    assert MCPToolGroup.objects.count() == 0


def test_tenant_b_cannot_see_or_touch_tenant_a_groups_and_tools(as_user, bob, tenant_a):
    group, key = mcp_group_create(tenant=tenant_a, name="alpha")
    tool = group.tools.first()
    client = as_user(bob)

    assert client.get(GROUPS).json() == []
    assert client.get(TOOLS).json() == []
    assert client.get(f"{GROUPS}/{group.pk}").status_code == 404
    assert client.get(f"{GROUPS}/{group.pk}/api-key").status_code == 404
    assert client.post(f"{GROUPS}/{group.pk}/regenerate-key").status_code == 404
    assert client.patch(f"{GROUPS}/{group.pk}", {"enabled": False}, format="json").status_code == 404
    assert client.put(f"{TOOLS}/{tool.pk}", {"enabled": False}, format="json").status_code == 404
    group.refresh_from_db()
    tool.refresh_from_db()
    assert group.enabled is True and tool.enabled is True and group.key_hash == hash_token(key)
    assert MCPKeyAudit.objects.exclude(action="create").count() == 0


def test_viewing_a_key_is_audited(as_user, alice, tenant_a):
    group, key = mcp_group_create(tenant=tenant_a, name="dify")

    response = as_user(alice).get(f"{GROUPS}/{group.pk}/api-key")

    assert response.status_code == 200
    assert response.json() == {"group_id": group.pk, "api_key": key}
    audit = MCPKeyAudit.objects.get(action="view")
    assert (audit.group, audit.actor, audit.tenant) == (group, alice, tenant_a)


def test_regenerating_a_key_replaces_it_and_is_audited(as_user, alice, tenant_a):
    group, old_key = mcp_group_create(tenant=tenant_a, name="dify")

    response = as_user(alice).post(f"{GROUPS}/{group.pk}/regenerate-key")

    new_key = response.json()["api_key"]
    assert response.status_code == 200 and new_key != old_key and new_key.startswith("mcp_key_")
    group.refresh_from_db()
    assert group.key_hash == hash_token(new_key)
    assert as_user(alice).get(f"{GROUPS}/{group.pk}/api-key").json()["api_key"] == new_key
    assert list(MCPKeyAudit.objects.order_by("id").values_list("action", "actor")) == [
        ("create", None),
        ("regenerate", alice.pk),
        ("view", alice.pk),
    ]
    with pytest.raises(CallRefused) as refused:
        mcp_call_authorize(key=old_key, tool_name="get_user_profile")
    assert refused.value.code == "invalid_key"


def test_tools_are_listed_by_group_and_updated(as_user, alice, tenant_a):
    first, _ = mcp_group_create(tenant=tenant_a, name="first")
    second, _ = mcp_group_create(tenant=tenant_a, name="second", tool_names=["get_business_metrics"])
    tool = MCPTool.objects.get(tenant=tenant_a, tool_name="get_user_profile")
    client = as_user(alice)

    listed = client.get(TOOLS, {"group_id": second.pk}).json()
    response = client.put(
        f"{TOOLS}/{tool.pk}",
        {"group_id": second.pk, "enabled": False, "timeout_seconds": 5, "description": "d", "config_data": {"a": 1}},
        format="json",
    )

    assert [t["tool_name"] for t in listed] == ["get_business_metrics"]
    assert response.status_code == 200
    assert {
        k: response.json()[k] for k in ("group_id", "enabled", "timeout_seconds", "description", "config_data")
    } == {
        "group_id": second.pk,
        "enabled": False,
        "timeout_seconds": 5,
        "description": "d",
        "config_data": {"a": 1},
    }
    assert len(client.get(TOOLS).json()) == 4


def test_bad_tool_updates_are_refused_and_change_nothing(as_user, alice, tenant_a, tenant_b):
    mcp_group_create(tenant=tenant_a, name="first")
    beta_group, _ = mcp_group_create(tenant=tenant_b, name="beta")
    tool = MCPTool.objects.get(tenant=tenant_a, tool_name="get_user_profile")
    client = as_user(alice)

    other_tenant_group = client.put(f"{TOOLS}/{tool.pk}", {"group_id": beta_group.pk}, format="json")
    zero_timeout = client.put(f"{TOOLS}/{tool.pk}", {"timeout_seconds": 0}, format="json")
    bad_config = client.put(f"{TOOLS}/{tool.pk}", {"config_data": "nope"}, format="json")

    assert other_tenant_group.status_code == 400
    assert other_tenant_group.json()["error"]["code"] == "group_not_found"
    assert zero_timeout.status_code == 400 and bad_config.status_code == 400
    before = tool.updated_at
    tool.refresh_from_db()
    assert tool.group.tenant_id == tenant_a.pk and tool.timeout_seconds == 30 and tool.updated_at == before


def _log(tenant, tool_name, success, duration_ms, minutes_ago=1, code=""):
    return MCPCallLog.objects.create(
        tenant=tenant,
        tool_name=tool_name,
        success=success,
        error_code=code,
        duration_ms=duration_ms,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def test_metrics_report_calls_errors_and_latency_per_tool_for_the_own_tenant(
    as_user, alice, bob, olga, tenant_a, tenant_b
):
    for ms in (10, 20, 30, 40):
        _log(tenant_a, "get_user_profile", True, ms)
    _log(tenant_a, "get_user_profile", False, 100, code="timeout")
    _log(tenant_a, "get_business_metrics", True, 7)
    _log(tenant_a, "get_business_metrics", True, 9999, minutes_ago=60 * 48)  # outside the 24 h window
    _log(tenant_b, "get_user_profile", False, 1, code="not_found")

    body = as_user(alice).get(METRICS).json()

    assert (body["total_calls"], body["total_errors"], body["success_rate"]) == (6, 1, 0.8333)
    assert body["tools"] == [
        {
            "tool_name": "get_business_metrics",
            "calls": 1,
            "errors": 0,
            "error_rate": 0.0,
            "p50_duration_ms": 7,
            "p95_duration_ms": 7,
            "errors_by_code": {},
        },
        {
            "tool_name": "get_user_profile",
            "calls": 5,
            "errors": 1,
            "error_rate": 0.2,
            "p50_duration_ms": 30,
            "p95_duration_ms": 100,
            "errors_by_code": {"timeout": 1},
        },
    ]
    assert as_user(bob).get(METRICS).json()["total_calls"] == 1
    assert as_user(olga).get(METRICS, {"hours": 72}).json()["total_calls"] == 8
    assert as_user(alice).get(METRICS, {"hours": 0}).status_code == 400


def test_subject_tokens_round_trip_and_refuse_tampering_and_expiry(tenant_a, cathy):
    token = subject_token_issue(tenant_id=tenant_a.pk, customer_id=cathy.pk, ttl_seconds=60)

    claims = subject_token_verify(token)

    assert (claims["tenant_id"], claims["customer_id"]) == (tenant_a.pk, cathy.pk)
    for bad, code in (
        (token[:-1] + ("A" if token[-1] != "A" else "B"), "subject_invalid"),
        ("garbage", "subject_invalid"),
        (subject_token_issue(tenant_id=tenant_a.pk, customer_id=cathy.pk, ttl_seconds=0), "subject_expired"),
    ):
        with pytest.raises(SubjectTokenError) as error:
            subject_token_verify(bad)
        assert error.value.code == code


def test_suspended_tenant_keys_stop_working(tenant_a):
    _, key = mcp_group_create(tenant=tenant_a, name="dify")
    Tenant.objects.filter(pk=tenant_a.pk).update(status=Tenant.Status.SUSPENDED)

    with pytest.raises(CallRefused) as refused:
        mcp_call_authorize(key=key, tool_name="get_user_profile")

    assert refused.value.code == "tenant_inactive"


def test_django_admin_lists_mcp_models_scoped_to_the_tenant(client, olga, alice, tenant_a, tenant_b):
    alpha, _ = mcp_group_create(tenant=tenant_a, name="alpha-group")
    mcp_group_create(tenant=tenant_b, name="beta-group")
    _log(tenant_a, "get_user_profile", True, 5)

    client.force_login(alice)
    pages = {
        name: client.get(f"/admin/mcp_admin/{name}/")
        for name in ("mcptoolgroup", "mcptool", "mcpcalllog", "mcpkeyaudit")
    }
    assert {name: r.status_code for name, r in pages.items()} == dict.fromkeys(pages, 200)
    assert b"alpha-group" in pages["mcptoolgroup"].content and b"beta-group" not in pages["mcptoolgroup"].content
    assert client.get("/admin/mcp_admin/mcpcalllog/?success__exact=1&tool_name=get_user_profile").status_code == 200

    response = client.post(
        "/admin/mcp_admin/mcptoolgroup/",
        {"action": "disable_groups", "_selected_action": [alpha.pk]},
    )
    assert response.status_code == 302
    alpha.refresh_from_db()
    assert alpha.enabled is False

    client.force_login(olga)
    page = client.get("/admin/mcp_admin/mcptoolgroup/")
    assert b"alpha-group" in page.content and b"beta-group" in page.content


def test_django_admin_add_creates_a_group_with_key_and_tools(client, alice, tenant_a):
    client.force_login(alice)

    response = client.post("/admin/mcp_admin/mcptoolgroup/add/", {"name": "from-admin", "description": "x"})

    assert response.status_code == 302, response.content[:2000]
    group = MCPToolGroup.objects.get(name="from-admin")
    assert group.tenant == tenant_a and group.created_by == alice and group.key_prefix.startswith("mcp_key_")
    assert group.tools.count() == 4
    assert MCPKeyAudit.objects.filter(group=group, action="create", actor=alice).count() == 1


def test_django_admin_regenerate_action_replaces_the_key(client, alice, tenant_a):
    group, key = mcp_group_create(tenant=tenant_a, name="dify")
    client.force_login(alice)

    response = client.post(
        "/admin/mcp_admin/mcptoolgroup/", {"action": "regenerate_keys", "_selected_action": [group.pk]}
    )

    assert response.status_code == 302
    group.refresh_from_db()
    assert group.key_hash != hash_token(key)
    assert MCPKeyAudit.objects.filter(group=group, action="regenerate", actor=alice).count() == 1


def test_django_admin_tool_form_offers_only_the_admins_own_groups(client, alice, tenant_a, tenant_b):
    mcp_group_create(tenant=tenant_a, name="alpha-group")
    mcp_group_create(tenant=tenant_b, name="beta-group")
    tool = MCPTool.objects.filter(tenant=tenant_a).first()
    client.force_login(alice)

    page = client.get(f"/admin/mcp_admin/mcptool/{tool.pk}/change/")

    assert page.status_code == 200
    assert b"alpha-group" in page.content and b"beta-group" not in page.content


def test_admin_views_a_group_key_again_in_django_admin_and_the_view_is_audited(alice, tenant_a, tenant_b):
    from django.test import Client

    from anmei.mcp_admin.models import MCPKeyAudit
    from anmei.mcp_admin.services import mcp_group_create

    # given a group of alice's tenant and one of tenant B
    group, key = mcp_group_create(tenant=tenant_a, name="dify", created_by=alice)
    other, other_key = mcp_group_create(tenant=tenant_b, name="other", created_by=None)
    client = Client()
    client.force_login(alice)

    # when alice runs "view keys" on her group and on B's (forged id)
    page = client.post(
        "/admin/mcp_admin/mcptoolgroup/",
        {"action": "view_keys", "_selected_action": [group.pk, other.pk]},
        follow=True,
    ).content.decode()

    # then she sees her key, not B's, and the view is recorded once
    assert key in page and other_key not in page
    views = MCPKeyAudit.objects.filter(action="view")
    assert list(views.values_list("group_id", "actor_id")) == [(group.pk, alice.pk)]
