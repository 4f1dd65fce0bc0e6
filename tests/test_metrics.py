"""Prometheus `/metrics`: who may read it, what it records, and that processes add up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.helpers import assert_error, poll

ROOT = Path(__file__).resolve().parent.parent


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.django_db
def test_metrics_need_the_token_outside_debug(anon, settings):
    # Given production settings with a metrics token
    settings.DEBUG = False
    settings.METRICS_TOKEN = "s3cret-metrics"
    # When scraped without it, with a wrong one, and with it
    missing = anon.get("/metrics")
    wrong = anon.get("/metrics", HTTP_AUTHORIZATION="Bearer nope")
    right = anon.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-metrics")
    # Then only the right token reads them
    assert_error(missing, 401, "not_authenticated")
    assert_error(wrong, 401, "not_authenticated")
    assert right.status_code == 200
    assert right["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_metrics_without_token_are_local_and_debug_only(anon, settings):
    # Given no token
    settings.METRICS_TOKEN = ""
    # When a local caller scrapes in DEBUG, then outside DEBUG, then from elsewhere in DEBUG
    settings.DEBUG = True
    local_debug = anon.get("/metrics")
    remote_debug = anon.get("/metrics", REMOTE_ADDR="10.1.2.3")
    settings.DEBUG = False
    local_production = anon.get("/metrics")
    # Then only the first is answered
    assert local_debug.status_code == 200
    assert_error(remote_debug, 401, "not_authenticated")
    assert_error(local_production, 401, "not_authenticated")


def test_requests_and_tasks_are_timed_by_route_and_task(anon, settings, celery_worker):
    from anmei.jobs.services import job_schedule
    from workers.diagnostics import echo

    settings.DEBUG, settings.METRICS_TOKEN = True, ""
    before = _samples(anon.get("/metrics").content.decode())
    route_key = (
        "anmei_http_request_duration_seconds_count",
        (("method", "GET"), ("route", "api/v1/health/live"), ("status", "200")),
    )
    task_key = ("anmei_task_duration_seconds_count", (("task", "workers.diagnostics.echo"),))
    retry_key = ("anmei_task_retries_total", (("task", "workers.diagnostics.job_probe"),))
    # When a route is called twice, a task runs once, and a durable job fails its first attempt
    anon.get("/api/v1/health/live")
    anon.get("/api/v1/health/live")
    echo.delay("x").get(timeout=20)
    job_schedule(
        kind="probe",
        key="metrics",
        task="workers.diagnostics.job_probe",
        payload={"marker": "probe:metrics", "fail_attempts": 1},
        retry_countdowns=[0.1],
    )

    # Then both show up, counted exactly, with the queue gauge beside them
    def scraped():
        found = _samples(anon.get("/metrics").content.decode())
        counted = found.get(task_key, 0) == before.get(task_key, 0) + 1
        retried = found.get(retry_key, 0) == before.get(retry_key, 0) + 1
        return found if counted and retried else None

    after = poll(scraped, timeout=10)
    assert after, "the task's run time or the job's retry never reached /metrics"
    assert after[route_key] == before.get(route_key, 0) + 2
    assert after[("anmei_queue_length", (("queue", "default"),))] == 0.0


def test_samples_of_several_processes_add_up(tmp_path):
    # Given the multi-process directory the launcher and compose set
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "anmei.settings"}
    bump = "from anmei.common.metrics import TASK_RETRIES; TASK_RETRIES.labels(task='t').inc({n})"
    # When two separate processes each count retries of the same task
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", bump.format(n=n)], env=env, cwd=ROOT, check=True, timeout=60)
    # Then a third (the web process answering /metrics) reports their sum
    read = (
        "import django; django.setup();"
        "from prometheus_client import generate_latest; from anmei.common.metrics import registry;"
        "print(generate_latest(registry()).decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", read], env=env, cwd=ROOT, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    assert _samples(out)[("anmei_task_retries_total", (("task", "t"),))] == 5.0
