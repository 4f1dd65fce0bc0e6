"""Stuck work tells the truth: dashboard figure and success rate, admin alert, gauge, admin retry."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from anmei.automation.models import AutomationRun
from anmei.automation.selectors import automation_metrics
from anmei.automation.services import automation_step_schedule
from anmei.jobs.models import Job
from anmei.jobs.selectors import jobs_stuck_counts
from anmei.notifications.models import AdminAlert
from anmei.notifications.services import jobs_stuck_alert
from tests.conftest import make_user
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

RETRY = "/api/v1/admin/registration-automation/runs/{}/retry"


def _run(tenant, username: str, status: str, *, minutes_ago: float, job_due_minutes_ago: float | None = None):
    customer = make_user(tenant, username)
    run = AutomationRun.objects.create(tenant=tenant, customer=customer, status=status)
    AutomationRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(minutes=minutes_ago))
    run.refresh_from_db()
    if job_due_minutes_ago is not None:
        job = automation_step_schedule(run=run, step="generate_welcome")
        due = timezone.now() - timedelta(minutes=job_due_minutes_ago)
        Job.objects.filter(pk=job.pk).update(next_attempt_at=due)
    return run


@pytest.fixture
def runs(tenant_a, tenant_b):
    """Tenant A: one succeeded, one failed, one stuck (its step job due 10 min ago), one on its way."""
    return {
        "succeeded": _run(tenant_a, "s1", "succeeded", minutes_ago=30),
        "failed": _run(tenant_a, "f1", "failed", minutes_ago=30),
        "stuck": _run(tenant_a, "k1", "running", minutes_ago=12, job_due_minutes_ago=10),
        "moving": _run(tenant_a, "m1", "running", minutes_ago=12, job_due_minutes_ago=-1),  # a retry due in 1 min
        "other_tenant": _run(tenant_b, "b1", "running", minutes_ago=12, job_due_minutes_ago=10),
    }


def test_dashboard_counts_stuck_runs_as_not_successful(runs, tenant_a, tenant_b):
    # When the tenant's figures are read
    metrics = automation_metrics(tenant_id=tenant_a.id)
    # Then the stuck run is a figure of its own and lowers the success rate; the moving one does not
    assert (metrics["succeeded"], metrics["failed"], metrics["stuck"], metrics["running"]) == (1, 1, 1, 2)
    assert metrics["success_rate"] == round(1 / 3, 4)
    assert metrics["stuck_jobs"] == {"automation": 1}
    assert jobs_stuck_counts(tenant_id=tenant_b.id) == {"automation": 1}  # the other tenant's own


def test_stuck_jobs_raise_one_alert_per_tenant_and_episode(runs, tenant_a, tenant_b):
    # When the beat's check runs twice
    first, second = jobs_stuck_alert(), jobs_stuck_alert()
    # Then each tenant got one alert about its own stuck pipeline, not one per run of the check
    assert (first, second) == (2, 0)
    alerts = sorted(AdminAlert.objects.values_list("tenant_id", "code", "details__kind", "details__count"))
    assert alerts == sorted(
        [(tenant_a.id, "jobs_stuck", "automation", 1), (tenant_b.id, "jobs_stuck", "automation", 1)]
    )


def test_the_stuck_gauge_counts_due_jobs_per_pipeline(runs, anon, settings):
    settings.DEBUG, settings.METRICS_TOKEN = True, ""
    text = anon.get("/metrics").content.decode()
    gauge = {
        sample.labels["kind"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "anmei_jobs_due_not_running"
        for sample in family.samples
    }
    assert gauge == {"automation": 2.0}  # both tenants' stuck jobs (an operator's figure)


def test_admin_retries_a_stuck_run_but_not_one_still_moving(runs, alice, bob, as_user):
    stuck, moving = runs["stuck"], runs["moving"]
    # When the admin retries the stuck run, another tenant's admin tries too, and the moving run is retried
    outsider = as_user(bob).post(RETRY.format(stuck.id))
    retried = as_user(alice).post(RETRY.format(stuck.id))
    refused = as_user(alice).post(RETRY.format(moving.id))
    # Then only the stuck run starts again, as a new generation from its first step
    assert_error(outsider, 404)
    assert retried.status_code == 202
    assert retried.json() == {"id": stuck.id, "status": "running", "generation": 1}
    first = Job.objects.get(kind="automation", key=f"run:{stuck.id}:1:create_default_conversation")
    assert (first.state, first.payload) == (
        "pending",
        {
            "run_id": stuck.id,
            "generation": 1,
            "step": "create_default_conversation",
            "customer_id": stuck.customer_id,
        },
    )
    assert_error(refused, 409, "run_not_failed")
    assert automation_metrics(tenant_id=stuck.tenant_id)["stuck"] == 0


def test_an_auto_reply_whose_workers_all_died_fails_with_an_admin_alert(tenant_a):
    from anmei.jobs.services import job_schedule
    from workers.bots import auto_reply_queued_before_rename as auto_reply  # a row named before the rename

    # Given an auto-reply job whose every attempt died with its worker (the last lease long expired)
    job = job_schedule(
        kind="bots.auto_reply",
        key="message:999",
        task="workers.bots.auto_reply",
        tenant_id=tenant_a.id,
        payload={"message_id": 999},
        max_attempts=2,
    )
    expired = timezone.now() - timedelta(minutes=5)
    Job.objects.filter(pk=job.pk).update(state="running", attempts=2, lease_until=expired)
    # When its message comes round once more
    auto_reply(job.id)
    # Then the job fails and the tenant's admins are told
    job.refresh_from_db()
    assert (job.state, job.last_error) == ("failed", "attempts exhausted: worker lost")
    alert = AdminAlert.objects.get()
    assert (alert.tenant_id, alert.code, alert.details["message_id"]) == (tenant_a.id, "auto_reply_failed", 999)
