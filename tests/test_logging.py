from __future__ import annotations

import json
import logging

import pytest

from anmei.common.logging import JsonFormatter

pytestmark = pytest.mark.django_db


def test_api_requests_are_logged_once_with_tenant_user_and_duration_but_no_secrets(carol, anon, caplog):
    caplog.set_level(logging.INFO, logger="anmei.access")
    login = anon.post(
        "/api/v1/auth/login", {"tenant": "alpha", "username": "carol", "password": "correct-horse-battery"}
    )
    token = login.json()["token"]
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    anon.get("/api/v1/conversations?status=waiting")

    records = [r for r in caplog.records if r.name == "anmei.access"]
    assert [(r.method, r.path, r.status) for r in records] == [
        ("POST", "/api/v1/auth/login", 200),
        ("GET", "/api/v1/conversations", 200),
    ]
    assert (records[1].tenant_id, records[1].user_id) == (carol.tenant_id, carol.id)
    assert records[1].duration_ms >= 0
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert all(json.loads(line)["event"] for line in lines)
    assert not any(token in line or "correct-horse-battery" in line for line in lines)


def test_not_ready_health_answer_is_logged_at_info_not_as_an_error(anon, caplog):
    # given no worker answers (the platform is booting): the probe's 503 is expected
    caplog.set_level(logging.DEBUG)
    response = anon.get("/api/v1/health/ready")

    # then one access line at INFO says it, and nothing reaches WARNING
    assert response.status_code == 503
    access = [r for r in caplog.records if r.name == "anmei.access"]
    assert [(r.levelno, r.status) for r in access] == [(logging.INFO, 503)]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_every_request_is_logged_once_pages_too(anon, caplog):
    caplog.set_level(logging.INFO, logger="anmei.access")
    anon.get("/chat/")
    anon.get("/api/v1/health/live")
    assert [(r.path) for r in caplog.records if r.name == "anmei.access"] == ["/chat/", "/api/v1/health/live"]


def test_daphne_access_log_is_off_so_requests_are_not_logged_twice():
    from anmei.serve import GracefulServer

    server = GracefulServer(application=None, endpoints=["tcp:port=0:interface=127.0.0.1"], action_logger=print)
    assert server.action_logger is None


def test_worker_task_received_and_succeeded_lines_stay_below_info(celery_worker, caplog):
    from anmei.jobs.models import Job
    from anmei.jobs.services import job_publish, job_schedule
    from tests.helpers import poll

    # given a real worker running jobs (the sweep alone runs every 5 s)
    caplog.set_level(logging.INFO)
    for n in range(3):
        job = job_schedule(
            kind="bots.auto_reply",
            key=f"message:{-n - 1}",
            task="workers.bots.auto_reply",
            payload={"message_id": -n - 1},
        )
        job_publish(job=job)
    assert poll(lambda: Job.objects.filter(state="done").count() == 3, timeout=30)

    # then no "received"/"succeeded" line was written at INFO
    chatter = [r.getMessage() for r in caplog.records if r.name.startswith("celery") and r.levelno == logging.INFO]
    assert [m for m in chatter if "received" in m or "succeeded" in m] == []
