"""The files a newcomer and an operator rely on: docker-compose, the CI script, the README commands."""

from __future__ import annotations

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


def test_readme_opens_with_the_two_commands_and_ci_calls_the_test_one():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make up", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "pg_ctlcluster" in ci and "redis-server" in ci


def test_the_launchers_worker_consumes_every_queue():
    from anmei.launcher import services
    from celery_config import app

    assert {q.name for q in app.conf.task_queues} <= _queues_consumed(services()["worker"])
