"""The dashboard endpoint (exact top-level shape of API.md), its page, and the run-retry API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from anmei.automation.models import AutomationRun, AutomationStep
from anmei.stats.services.rollup import tenant_zone
from tests.conftest import make_user
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

URL = "/api/v1/admin/registration-automation/dashboard"


def _run(tenant, username, status, ms=None, failed_step=""):
    customer = make_user(tenant, username)
    run = AutomationRun.objects.create(
        tenant=tenant,
        customer=customer,
        status=status,
        end_to_end_ms=ms,
        failed_step=failed_step,
        welcome_source="agent" if ms else "",
        finished_at=timezone.now(),
    )
    now = timezone.now()
    AutomationStep.objects.create(
        tenant=tenant,
        run=run,
        step=failed_step or "record_metrics",
        attempt=1,
        success=status == "succeeded",
        duration_ms=5,
        error="" if ms else "boom",
        started_at=now - timedelta(seconds=1),
        finished_at=now,
    )
    return run


@pytest.fixture
def seeded(tenant_a, tenant_b):
    runs = [_run(tenant_a, f"c{i}", "succeeded", ms) for i, ms in enumerate([100.0, 200.0, 300.0])]
    runs.append(_run(tenant_a, "cf", "failed", failed_step="notify_consultants"))
    _run(tenant_b, "b1", "failed", failed_step="deliver_welcome")
    _run(tenant_b, "b2", "failed", failed_step="deliver_welcome")
    return runs


def test_dashboard_has_the_api_md_shape_and_counts_only_the_admins_tenant(seeded, alice, as_user):
    response = as_user(alice).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "automation_metrics",
        "mcp_server_status",
        "dify_agent_status",
        "recent_errors",
        "system_health",
    }
    metrics = body["automation_metrics"]
    assert {
        "success_rate",
        "total_automations",
        "average_response_time_ms",
        "p95_response_time_ms",
        "daily_trends",
    } <= set(metrics)
    assert (metrics["success_rate"], metrics["total_automations"], metrics["failed"]) == (0.75, 4, 1)
    assert (metrics["average_response_time_ms"], metrics["p95_response_time_ms"]) == (200.0, 300.0)
    assert len(metrics["daily_trends"]) == 14
    today = metrics["daily_trends"][-1]
    # the trend counts the tenant's local days (Asia/Shanghai): "today" is the clinic's today
    assert (today["date"], today["total"], today["succeeded"], today["failed"]) == (
        timezone.now().astimezone(tenant_zone(alice.tenant_id)).date().isoformat(),
        4,
        3,
        1,
    )
    assert metrics["steps"]["notify_consultants"] == {"attempts": 1, "failures": 1, "average_ms": 5.0}
    assert metrics["steps"]["deliver_welcome"]["attempts"] == 0  # tenant B's failures are not ours
    assert [(e["kind"], e["step"], e["run_id"]) for e in body["recent_errors"]] == [
        ("step", "notify_consultants", seeded[3].id)
    ]
    assert body["mcp_server_status"]["status"] == "unconfigured"  # no welcome has provisioned a key yet
    assert body["dify_agent_status"]["provider"] == "local" and body["dify_agent_status"]["status"] == "ok"
    assert set(body["system_health"]["checks"]) >= {"database", "redis"}


def test_dashboard_of_an_empty_tenant_has_no_rates_yet(tenant_b, bob, as_user):
    metrics = as_user(bob).get(URL + "?days=3").json()["automation_metrics"]
    assert (metrics["success_rate"], metrics["total_automations"], metrics["p95_response_time_ms"]) == (None, 0, None)
    assert [d["total"] for d in metrics["daily_trends"]] == [0, 0, 0]


def test_dashboard_is_for_admins_only(seeded, carol, cathy, anon, as_user):
    assert_error(as_user(carol).get(URL), 403)
    assert_error(as_user(cathy).get(URL), 403)
    assert_error(anon.get(URL), 401)


def test_dashboard_rejects_bad_input_and_operators_name_a_tenant(seeded, tenant_a, alice, olga, as_user):
    assert_error(as_user(alice).get(URL + "?days=0"), 400)
    assert_error(as_user(alice).get(URL + "?days=abc"), 400)
    assert_error(as_user(olga).get(URL), 400, "tenant_required")
    assert_error(as_user(olga).get(URL + "?tenant=999999"), 404)
    assert as_user(olga).get(URL + f"?tenant={tenant_a.id}").json()["automation_metrics"]["total_automations"] == 4


def test_dashboard_page_renders_charts_for_admins_only(seeded, alice, carol, client):
    client.force_login(alice)
    page = client.get("/admin/registration-automation/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "automation/vendor/chart.umd.min.js" in html and 'id="dashboard-data"' in html
    assert '"total_automations": 4' in html
    client.force_login(carol)
    assert client.get("/admin/registration-automation/").status_code == 302  # to the admin login


def test_run_retry_api_is_tenant_scoped_and_only_for_failed_runs(seeded, alice, bob, as_user, celery_app):
    succeeded, failed = seeded[0], seeded[3]
    assert_error(as_user(bob).post(f"/api/v1/admin/registration-automation/runs/{failed.id}/retry"), 404)
    failed.refresh_from_db()
    assert (failed.status, failed.generation) == ("failed", 0)
    assert_error(
        as_user(alice).post(f"/api/v1/admin/registration-automation/runs/{succeeded.id}/retry"), 409, "run_not_failed"
    )


def test_admin_pages_for_automation_and_agent_render_for_the_tenant_admin(seeded, tenant_a, alice, client):
    from anmei.ai.services.agent_config import agent_config_get_or_create
    from anmei.automation.services import automation_settings_get_or_create

    config = agent_config_get_or_create(tenant_id=tenant_a.id)
    settings_row = automation_settings_get_or_create(tenant_id=tenant_a.id)
    client.force_login(alice)
    for url in [
        "/admin/automation/automationrun/",
        f"/admin/automation/automationrun/{seeded[3].id}/change/",
        "/admin/automation/automationsettings/",
        f"/admin/automation/automationsettings/{settings_row.id}/change/",
        "/admin/ai/agentconfig/",
        f"/admin/ai/agentconfig/{config.id}/change/",
        "/admin/ai/agentcall/",
        "/admin/notifications/notification/",
    ]:
        assert client.get(url).status_code == 200, url


def test_agent_config_admin_stores_a_new_key_encrypted_and_never_shows_it(tenant_a, alice, client):
    from anmei.ai.models import AgentConfig
    from anmei.ai.services.agent_config import agent_config_get_or_create

    config = agent_config_get_or_create(tenant_id=tenant_a.id)
    client.force_login(alice)
    response = client.post(
        f"/admin/ai/agentconfig/{config.id}/change/",
        {
            "tenant": tenant_a.id,
            "provider": "dify",
            "enabled": "on",
            "base_url": "https://dify.example.com",
            "app_id": "app-1",
            "model": "",
            "timeout_seconds": "5",
            "welcome_template": "{nickname}，欢迎！",
            "breaker_threshold": "3",
            "breaker_cooldown_seconds": "20",
            "api_key": "app-secret-key-1",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    config = AgentConfig.objects.get(pk=config.pk)
    assert (config.provider, config.api_key, config.breaker_threshold) == ("dify", "app-secret-key-1", 3)
    assert "app-secret-key-1" not in client.get(f"/admin/ai/agentconfig/{config.id}/change/").content.decode()


def test_dashboard_reads_create_no_agent_config(tenant_b, bob, as_user):
    from anmei.ai.models import AgentConfig

    # given a tenant that never used the AI gateway
    # when its admin loads the dashboard
    body = as_user(bob).get(URL).json()

    # then the default configuration is shown and no row was written
    assert (body["dify_agent_status"]["provider"], body["mcp_server_status"]["status"]) == ("local", "unconfigured")
    assert AgentConfig.objects.count() == 0


def test_the_mcp_probe_runs_once_per_cache_window_and_tenant(tenant_a, tenant_b, settings):
    from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
    from anmei.automation.selectors import mcp_status
    from tests.fakes._http import FakeServer

    # given both tenants hold an MCP key and the sidecar answers every request with a 503
    hits = []
    sidecar = FakeServer(lambda method, path, headers, body: (hits.append(path) or 503, {"error": "down"})).start()
    settings.MCP_URL = f"{sidecar.url}/mcp"
    for tenant in (tenant_a, tenant_b):
        agent_config_update(config=agent_config_get_or_create(tenant_id=tenant.id), mcp_group_key=f"key-{tenant.id}")
    try:
        # when tenant A's dashboard status is read twice, then tenant B's once (a generous timeout:
        # each probe waits for the sidecar's answer even on a loaded machine)
        first = mcp_status(tenant_id=tenant_a.id, timeout=15)
        probes_after_first = len(hits)
        second = mcp_status(tenant_id=tenant_a.id, timeout=15)
        probes_after_second = len(hits)
        other = mcp_status(tenant_id=tenant_b.id, timeout=15)
    finally:
        sidecar.stop()

    # then the second read reuses the first probe; the other tenant gets its own
    assert (first["status"], probes_after_first >= 1) == ("down", True)
    assert (second, probes_after_second) == (first, probes_after_first)
    assert (other["status"], len(hits) > probes_after_second) == ("down", True)
