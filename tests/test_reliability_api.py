"""Doors for orchestrators and dependency outages: liveness, readiness, and 503 (never 500)."""

from __future__ import annotations

import socket

import pytest

from anmei.accounts.models import User
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_live_answers_without_consulting_any_dependency(anon, settings):
    # Given a Redis that cannot be reached
    settings.REDIS_URL = f"redis://127.0.0.1:{_closed_port()}/0"
    # When the orchestrator asks whether the process lives
    response = anon.get("/api/v1/health/live")
    # Then it does
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_ready_is_the_health_report(anon):
    # Given no Celery worker running
    # When the orchestrator asks whether the process is ready
    response = anon.get("/api/v1/health/ready")
    # Then it gets /health's answer: 503 naming the workers
    assert response.status_code == 503
    assert response.json()["failing"] == ["workers"]


def test_registration_during_a_redis_outage_is_a_503_and_creates_nobody(anon, tenant_a, settings):
    # Given the cache (the registration throttle's store) pointing at a Redis that is down
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{_closed_port()}/0",
        }
    }
    # When a customer registers
    response = anon.post(
        "/api/v1/auth/register",
        {"tenant": "alpha", "username": "newbie", "password": "correct-horse-battery"},
        format="json",
    )
    # Then the API says the dependency is down, and nothing was written
    error = assert_error(response, 503, "dependency_unavailable")
    assert error["details"] == {"dependency": "redis"}
    assert response["Retry-After"] == "5"
    assert not User.objects.filter(username="newbie").exists()
