"""The configuration audit trail: a row per change, attributed to its door and user, committed with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.db import DatabaseError, connection

from anmei.audit.models import AuditEntry
from anmei.automation.models import AutomationSettings
from anmei.automation.services import automation_settings_get_or_create, automation_settings_update

pytestmark = pytest.mark.django_db(transaction=True)


def config_rows():
    """Audit rows other than the staff accounts the persona fixtures create."""
    return AuditEntry.objects.exclude(object_type="user")


def test_agent_config_change_through_the_api_is_audited_with_its_secret_masked(tenant_a, alice, as_user):
    # given tenant A's admin
    client = as_user(alice)
    client.get("/api/v1/admin/agent-config")

    # when they switch the model and set a key through the API
    response = client.put("/api/v1/admin/agent-config", {"model": "gpt-z", "api_key": "sk-very-secret"}, format="json")
    assert response.status_code == 200

    # then exactly one row says who, through which door, and what changed, without the secret
    entry = config_rows().get()
    assert (entry.tenant_id, entry.actor_id, entry.actor_username, entry.door) == (
        tenant_a.id,
        alice.id,
        "alice",
        "api",
    )
    assert (entry.action, entry.object_type) == ("update", "agent_config")
    assert entry.changes["api_key"] == [None, "***"]
    assert entry.changes["model"][1] == "gpt-z"
    assert "sk-very-secret" not in json.dumps(entry.changes)


def test_automation_settings_change_is_audited_field_by_field(tenant_a):
    config = automation_settings_get_or_create(tenant_id=tenant_a.id)
    old = config.max_retries

    automation_settings_update(tenant_id=tenant_a.id, max_retries=old + 2, enabled=config.enabled)

    entry = config_rows().get()
    assert (entry.object_type, entry.object_id, entry.door, entry.actor_id) == (
        "automation_settings",
        str(config.pk),
        "system",
        None,
    )
    assert entry.changes == {"max_retries": [old, old + 2]}


def test_a_change_whose_audit_row_fails_is_not_committed(tenant_a):
    # given settings, and an audit table that refuses inserts (a real database failure)
    config = automation_settings_get_or_create(tenant_id=tenant_a.id)
    old = config.max_retries
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION audit_refuse() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'audit down'; END $$"
            " LANGUAGE plpgsql;"
            "CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_auditentry"
            " FOR EACH ROW EXECUTE FUNCTION audit_refuse();"
        )
    try:
        # when the settings are changed
        with pytest.raises(DatabaseError):
            automation_settings_update(tenant_id=tenant_a.id, max_retries=old + 5)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER audit_refuse ON audit_auditentry; DROP FUNCTION audit_refuse();")

    # then the change did not commit either
    assert AutomationSettings.objects.get(pk=config.pk).max_retries == old
    assert config_rows().count() == 0


def test_audit_log_api_filters_and_keeps_tenants_apart(tenant_a, tenant_b, alice, carol, bob, olga, as_user):
    # given one change in each tenant, made through the API by each tenant's admin
    as_user(alice).put("/api/v1/admin/agent-config", {"model": "gpt-a"}, format="json")
    as_user(bob).put("/api/v1/admin/agent-config", {"model": "gpt-b"}, format="json")
    automation_settings_update(tenant_id=tenant_a.id, max_retries=7)

    # then tenant A's admin sees only tenant A's rows, even when asking for tenant B
    rows = as_user(alice).get(f"/api/v1/admin/audit-log?tenant={tenant_b.id}").json()["results"]
    assert sorted(r["object_type"] for r in rows if r["object_type"] != "user") == [
        "agent_config",
        "automation_settings",
    ]
    assert {r["id"] for r in rows} == set(AuditEntry.objects.filter(tenant=tenant_a).values_list("id", flat=True))
    rows = as_user(alice).get("/api/v1/admin/audit-log?object_type=agent_config&actor=alice").json()["results"]
    assert [(r["actor"]["username"], r["changes"]["model"][1]) for r in rows] == [("alice", "gpt-a")]
    bob_rows = as_user(bob).get("/api/v1/admin/audit-log?object_type=agent_config").json()["results"]
    assert [r["changes"]["model"][1] for r in bob_rows] == ["gpt-b"]

    # and an operator sees both tenants, or one with tenant=
    assert as_user(olga).get("/api/v1/admin/audit-log").json()["count"] == AuditEntry.objects.count()
    only_b = (
        as_user(olga).get(f"/api/v1/admin/audit-log?tenant={tenant_b.id}&object_type=agent_config").json()["results"]
    )
    assert [r["actor"]["username"] for r in only_b] == ["bob"]

    # and bad filters are a 400, consultants a 403
    assert as_user(alice).get("/api/v1/admin/audit-log?object_type=nope").status_code == 400
    assert as_user(alice).get("/api/v1/admin/audit-log?from=yesterday").status_code == 400
    assert as_user(carol).get("/api/v1/admin/audit-log").status_code == 403


def test_audit_log_days_are_the_tenants_local_days(tenant_a, alice, as_user):
    # given a change at 23:30 UTC on 1 March, which is 07:30 on 2 March in Shanghai (the default zone)
    automation_settings_update(tenant_id=tenant_a.id, max_retries=9)
    entry = config_rows().get()
    AuditEntry.objects.filter(pk=entry.pk).update(at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))

    def ids(query):
        response = as_user(alice).get(f"/api/v1/admin/audit-log?object_type=automation_settings&{query}")
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    # then it belongs to the clinic's 2 March, not to UTC's 1 March, with both ends included
    assert ids("from=2026-03-02&to=2026-03-02") == [entry.id]
    assert ids("from=2026-03-01&to=2026-03-01") == []
    assert ids("to=2026-03-02") == [entry.id]
    assert ids("from=2026-03-03") == []
    # and a range that ends before it starts is refused
    response = as_user(alice).get("/api/v1/admin/audit-log?from=2026-03-03&to=2026-03-02")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_range")


def test_every_api_door_that_writes_configuration_leaves_one_row(tenant_a, alice, as_user):
    """Walk the configuration writes of the API; each one must leave its own row, secrets masked."""
    client = as_user(alice)
    group = client.post("/api/v1/mcp-config/groups", {"name": "crm"}, format="json").json()
    gid = group["id"]
    tool_id = client.get("/api/v1/mcp-config/tools").json()[0]["id"]
    key = client.post("/api/v1/api-keys", {"name": "erp", "scopes": ["stats:read"]}, format="json").json()
    writes = [
        ("mcp_group", "key_create", lambda: None),
        ("api_key", "create", lambda: None),
        (
            "mcp_group",
            "update",
            lambda: client.patch(f"/api/v1/mcp-config/groups/{gid}", {"enabled": False}, format="json"),
        ),
        ("mcp_group", "key_view", lambda: client.get(f"/api/v1/mcp-config/groups/{gid}/api-key")),
        ("mcp_group", "key_regenerate", lambda: client.post(f"/api/v1/mcp-config/groups/{gid}/regenerate-key")),
        (
            "mcp_tool",
            "update",
            lambda: client.put(f"/api/v1/mcp-config/tools/{tool_id}", {"timeout_seconds": 9}, format="json"),
        ),
        ("api_key", "revoke", lambda: client.delete(f"/api/v1/api-keys/{key['id']}")),
        (
            "blacklist_entry",
            "add",
            lambda: client.post("/api/v1/blacklist", {"platform": "wechat", "user_id": "wx1"}, format="json"),
        ),
        (
            "bot_gateway",
            "update",
            lambda: client.put("/api/v1/admin/bot-gateway", {"retry_countdowns": [1, 2]}, format="json"),
        ),
    ]
    for _object_type, _action, write in writes:
        response = write()
        assert response is None or response.status_code < 300, response.content

    rows = list(config_rows().order_by("id").values_list("object_type", "action", "door", "actor_id"))
    assert [(t, a) for t, a, _, _ in rows] == [(t, a) for t, a, _ in writes]
    assert {(door, actor) for _, _, door, actor in rows} == {("api", alice.id)}
    dumped = json.dumps(list(config_rows().values_list("changes", flat=True)))
    assert key["key"] not in dumped and group["api_key"] not in dumped


def _admin_resubmit(client, url: str, **overrides) -> int:
    """Post an admin change form back with its own current values, some of them overridden."""
    form = client.get(url).context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if value is None:
            continue
        data[name] = field.prepare_value(value) if hasattr(field, "prepare_value") else value
    data.update(overrides)
    return client.post(url, {k: v for k, v in data.items() if v is not None}).status_code


def test_an_admin_save_is_audited_as_the_admin_door(tenant_a, olga):
    from django.test import Client

    from anmei.bots.services.instances import gateway_settings_get_or_create

    gateway = gateway_settings_get_or_create(tenant_id=tenant_a.id)
    client = Client()
    client.force_login(olga)

    status = _admin_resubmit(client, f"/admin/bots/gatewaysettings/{gateway.pk}/change/", retry_countdowns="[3, 4]")

    assert status == 302
    entry = config_rows().get()
    assert (entry.door, entry.actor_id, entry.object_type, entry.tenant_id) == (
        "admin",
        olga.id,
        "bot_gateway",
        tenant_a.id,
    )
    assert entry.changes["retry_countdowns"][1] == [3, 4]


def test_the_bootstrap_command_audits_the_staff_it_creates_as_the_command_door(db):
    from django.core.management import call_command

    call_command("bootstrap_tenant", "gamma", "--name", "Gamma", "--admin", "gadmin:Str0ng-pass-1x")

    entry = AuditEntry.objects.get(object_type="user")
    assert (entry.door, entry.action, entry.actor_id) == ("command", "create", None)
    assert entry.changes == {"username": [None, "gadmin"], "role": [None, "admin"], "password": [None, "***"]}


# Every model with a tenant is configuration (audited in admin through AuditedAdminMixin, or its
# admin calls a service that calls audit_record), data, or a listed gap. A new model must be put in
# one of these sets, so a configuration model added without an audit fails here.
ADMIN_THROUGH_AUDITED_SERVICES = {"blacklist.BlacklistEntry", "apikeys.ApiKey", "bots.BotInstance"}
CONFIG_MODELS = {
    "automation.AutomationSettings",
    "ai.AgentConfig",
    "bots.GatewaySettings",
    "mcp_admin.MCPToolGroup",
    "mcp_admin.MCPTool",
    "accounts.User",
    "conversations.RoutingSettings",
    *ADMIN_THROUGH_AUDITED_SERVICES,
}
# Configuration not yet audited (see docs/architecture.md "Audit trail"): hooked by their owners next.
NOT_YET_AUDITED = {"ai.CannedResponse", "conversations.ConversationSettings", "stats.StatsSettings"}
DATA_MODELS = {
    "ai.AgentCall", "ai.ConversationContext", "ai.ConversationSummary", "apikeys.ApiKeyAudit", "asr.AsrTask",
    "audit.AuditEntry", "automation.AutomationRun", "automation.AutomationStep", "blacklist.BlacklistChange",
    "blacklist.BlacklistInterception", "blacklist.BlacklistState", "blacklist.InterceptionReport",
    "bots.BotDelivery", "conversations.Conversation", "conversations.ConversationEvent", "conversations.Message",
    "jobs.Job", "mcp_admin.MCPCallLog", "mcp_admin.MCPKeyAudit", "notifications.AdminAlert",
    "notifications.Notification", "stats.Rating", "stats.ReportingEvent", "stats.StatsCustomerDay",
    "stats.StatsDaily", "stats.StatsHourly", "stats.StatsTenantDaily", "stats.StatsTermDaily",
}  # fmt: skip


def _points_at_tenant(field) -> bool:
    related = getattr(field, "related_model", None)
    return bool(field.is_relation and field.concrete and related and related._meta.label == "tenants.Tenant")


def test_every_configuration_model_is_audited_in_admin_and_every_tenant_model_is_classified():
    from django.apps import apps
    from django.contrib import admin

    from anmei.audit.admin import AuditedAdminMixin

    tenant_models = {m._meta.label for m in apps.get_models() if any(map(_points_at_tenant, m._meta.get_fields()))}
    unclassified = tenant_models - CONFIG_MODELS - DATA_MODELS - NOT_YET_AUDITED
    assert unclassified == set(), f"classify these models as configuration or data: {sorted(unclassified)}"
    for label in CONFIG_MODELS - ADMIN_THROUGH_AUDITED_SERVICES:
        assert isinstance(admin.site._registry[apps.get_model(label)], AuditedAdminMixin), label
