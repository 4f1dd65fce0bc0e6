"""The files a newcomer and an operator rely on: docker-compose, the CI script, the two make commands."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _queues_consumed(worker_command: list[str]) -> set[str]:
    """The queues a `celery worker` command line consumes (`-Q a,b`)."""
    if "-Q" not in worker_command:
        return set()
    return set(worker_command[worker_command.index("-Q") + 1].split(","))


def test_docker_compose_has_every_service_with_a_health_check():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "web", "worker", "asr-worker", "beat", "mcp", "flower"} <= set(services)
    for name, service in services.items():
        assert "healthcheck" in service, name
    assert {"pgdata", "redisdata"} <= set(compose["volumes"])
    assert "asr" in services["asr-worker"]["command"]
    # every queue the Celery app declares has a worker consuming it
    from celery_config import app

    consumed = set()
    for service in services.values():
        command = service.get("command") or []
        if "worker" in command:
            consumed |= _queues_consumed(command)
    assert {q.name for q in app.conf.task_queues} <= consumed


def test_make_up_and_make_test_run_the_launcher(tmp_path):
    # given the Makefile behind the newcomer's two commands
    # when make says what each would run (-n: print, do not run)
    ran = {
        target: subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=30)
        for target in ("up", "test")
    }
    # then both resolve, one starting every process and the other running the suite
    assert [r.returncode for r in ran.values()] == [0, 0], [r.stderr for r in ran.values()]
    assert "-m anmei.launcher up" in ran["up"].stdout
    assert "-m anmei.launcher test" in ran["test"].stdout


def test_ci_runs_the_test_command_against_postgresql_and_redis(tmp_path):
    # given stand-ins for the services' client tools and make, which record how they were called
    log = tmp_path / "calls"
    for tool, answer in {
        "make": "",
        "pg_isready": "",
        "redis-cli": "PONG",
        "psql": " 1",
        "createdb": "",
        "fc-list": "NotoSansCJK-Regular.ttc: Noto Sans CJK SC",
        "apt-get": "",
        "pg_ctlcluster": "",
        "redis-server": "",
    }.items():
        stub = tmp_path / tool
        stub.write_text(
            f'#!/bin/sh\necho "{tool} $* DATABASE_URL=$DATABASE_URL REDIS_URL=$REDIS_URL" >> {log}\necho "{answer}"\n'
        )
        stub.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["PATH"] = f"{tmp_path}:{env['PATH']}"
    # when CI's script runs
    result = subprocess.run(["bash", str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)
    # then it ran `make test` once, pointed at PostgreSQL and Redis on this machine
    assert result.returncode == 0, result.stderr
    makes = [line for line in log.read_text().splitlines() if line.startswith("make ")]
    assert makes == [
        "make test DATABASE_URL=postgres://postgres@127.0.0.1:5432/anmei_ci REDIS_URL=redis://127.0.0.1:6379/0"
    ]


def test_the_launchers_worker_consumes_every_queue():
    from anmei.launcher import services
    from celery_config import app

    assert {q.name for q in app.conf.task_queues} <= _queues_consumed(services()["worker"])
