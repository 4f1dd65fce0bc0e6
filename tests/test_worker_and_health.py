from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from celery_config import app
from workers.diagnostics import echo

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_celery_settings_make_tasks_survive_worker_loss():
    conf = app.conf
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json" and conf.accept_content == ["json"]
    # a minute longer than the longest task (its job's lease: ASR's 300 s time limit + 60), not an hour
    assert conf.broker_transport_options["visibility_timeout"] == max(settings.TASK_LEASES_SECONDS) + 60 == 420
    assert {q.name for q in conf.task_queues} == {"default", "asr", "replies"}


def test_tasks_are_routed_by_name():
    router = app.amqp.router
    assert router.route({}, "workers.asr.transcribe")["queue"].name == "asr"
    assert router.route({}, "workers.diagnostics.echo")["queue"].name == "default"
    assert router.route({}, "workers.ai.auto_reply")["queue"].name == "replies"
    assert router.route({}, "workers.bots.auto_reply")["queue"].name == "replies"  # rows queued before the rename
    assert router.route({}, "workers.blacklist.push_to_bot")["queue"].name == "default"


def test_a_fresh_django_process_sends_tasks_to_the_project_broker():
    """A web process that never imported celery_config still sends its tasks to the project's broker.

    (Before the import in CommonConfig.ready, @shared_task bound to Celery's default app there and
    an auto-reply went to amqp://localhost.) Run in a new interpreter: this one has imported it.
    """
    code = (
        "import django; django.setup()\n"
        "from workers.ai import auto_reply\n"
        "print(auto_reply.app.main, auto_reply.app.conf.broker_url)\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "anmei.settings", "LOG_LEVEL": "WARNING"}
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-2:] == ["anmei", settings.CELERY_BROKER_URL]


def test_a_real_worker_runs_a_task_end_to_end(celery_worker):
    result = echo.delay("hello")
    outcome = result.get(timeout=20)
    assert outcome["value"] == "hello"
    assert outcome["queue"] == "default"
    assert outcome["acks_late"] is True
    assert result.state == "SUCCESS"


def test_health_is_ok_when_everything_answers(anon, celery_worker):
    response = anon.get("/api/v1/health")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok"
    assert {name: check["status"] for name, check in body["checks"].items()} == {
        "database": "ok",
        "redis": "ok",
        "broker": "ok",
        "workers": "ok",
    }
    assert body["checks"]["workers"]["count"] >= 1


def test_health_is_503_naming_redis_when_redis_is_unreachable(anon, settings, celery_worker):
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    original_broker = app.conf.broker_url
    settings.REDIS_URL = dead
    settings.CELERY_BROKER_URL = dead
    app.conf.broker_url = dead
    try:
        response = anon.get("/api/v1/health")
    finally:
        app.conf.broker_url = original_broker  # (settings.* is still `dead` here: restore the saved URL)
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert {"redis", "broker", "workers"} <= set(body["failing"])
    assert "database" not in body["failing"]
    assert body["checks"]["redis"]["status"] == "down"
    assert body["checks"]["redis"]["error"]


def test_health_is_503_naming_workers_when_none_answers(anon):
    response = anon.get("/api/v1/health")
    assert response.status_code == 503
    assert response.json()["failing"] == ["workers"]
