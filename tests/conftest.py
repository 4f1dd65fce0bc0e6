"""Shared fixtures: personas in two tenants, an API client per persona, a real Celery worker.

Tenant A ("alpha"): admin Alice, consultant Carol, customer Cathy. Tenant B ("beta"): outsiders
Bob (admin), Ben (consultant) and Bill (customer). An operator Olga belongs to no tenant.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from anmei.accounts.models import User
from anmei.accounts.services import auth_token_issue, user_create
from anmei.tenants.models import Tenant

PASSWORD = "correct-horse-battery"

pytest_plugins = [
    "tests.fixtures_mcp",
    "tests.fixtures_bots",
    "tests.fixtures_automation",
    "tests.fixtures_ai",
    "tests.fixtures_security",
]


def pytest_configure(config):
    from django.conf import settings

    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)  # the SQLite test database lives there


@pytest.fixture(autouse=True)
def _clean_redis():
    """Start every test with an empty Redis database (tickets, presence, throttles, queues)."""
    from anmei.common.redis import get_redis

    get_redis().flushdb()
    yield


def make_tenant(slug: str, status: str = Tenant.Status.APPROVED) -> Tenant:
    return Tenant.objects.create(name=slug.title(), slug=slug, contact_email=f"ops@{slug}.test", status=status)


def make_user(tenant: Tenant | None, username: str, role: str = User.Role.CUSTOMER, **extra) -> User:
    return user_create(tenant=tenant, username=username, password=PASSWORD, role=role, **extra)


@pytest.fixture
def tenant_a(db) -> Tenant:
    return make_tenant("alpha")


@pytest.fixture
def tenant_b(db) -> Tenant:
    return make_tenant("beta")


@pytest.fixture
def alice(tenant_a) -> User:
    return make_user(tenant_a, "alice", User.Role.ADMIN)


@pytest.fixture
def carol(tenant_a) -> User:
    return make_user(tenant_a, "carol", User.Role.CONSULTANT, nickname="Carol")


@pytest.fixture
def cathy(tenant_a) -> User:
    return make_user(tenant_a, "cathy", User.Role.CUSTOMER, nickname="Cathy")


@pytest.fixture
def bob(tenant_b) -> User:
    return make_user(tenant_b, "bob", User.Role.ADMIN)


@pytest.fixture
def ben(tenant_b) -> User:
    return make_user(tenant_b, "ben", User.Role.CONSULTANT)


@pytest.fixture
def bill(tenant_b) -> User:
    return make_user(tenant_b, "bill", User.Role.CUSTOMER)


@pytest.fixture
def olga(db) -> User:
    return User.objects.create_superuser("olga", "olga@platform.test", PASSWORD)


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {auth_token_issue(user=user)}")
    return client


@pytest.fixture
def as_user():
    """`as_user(user)` returns an APIClient authenticated with a fresh bearer token of that user."""
    return client_for


@pytest.fixture(scope="session")
def celery_app():
    from celery_config import app

    return app


@pytest.fixture
def celery_worker(celery_app, transactional_db):
    """A real Celery worker (thread pool, Redis broker) consuming `default`, `asr` and `replies`.

    Tests using it need committed rows: they run with transactional_db.
    """
    from celery.contrib.testing.worker import start_worker

    celery_app.control.purge()
    with start_worker(
        celery_app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        loglevel="WARNING",
        queues=["default", "asr", "replies"],
        shutdown_timeout=30,
    ) as worker:
        yield worker
    # start_worker stops the worker by *terminating* it, and a terminated thread pool does not wait
    # for the tasks still running. Wait for them here, so that the database flush that follows
    # never races a task's transaction (TRUNCATE against a task's row locks deadlocks).
    worker.pool.executor.shutdown(wait=True, cancel_futures=True)
