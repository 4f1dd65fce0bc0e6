"""Fixtures for the automation and AI gateway tests (a pytest plugin loaded by tests/conftest.py).

Remote services are fake HTTP servers on 127.0.0.1 (tests/fakes/); our own MCP sidecar is the
real one (the `mcp_sidecar` fixture of tests/fixtures_mcp.py when present, else a subprocess).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from tests.fixtures_mcp import database_url_for_children
from tests.helpers import poll

ROOT = Path(__file__).resolve().parent.parent
FAST_COUNTDOWNS = [0.2, 0.4, 0.6]


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """Poll `predicate()` until it returns something truthy; fail with the last value on timeout."""
    value = poll(predicate, timeout=timeout, interval=interval)
    if not value:
        raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
    return value


async def await_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    """`wait_for` from async tests, polling in a worker thread whose DB connection is closed after."""
    from django.db import connections

    def poll():
        try:
            return wait_for(predicate, timeout, interval)
        finally:
            connections.close_all()

    return await sync_to_async(poll, thread_sensitive=False)()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"DATABASE_URL": database_url_for_children(), "PYTHONPATH": str(ROOT), **extra})
    return env


@pytest.fixture(scope="session")
def _automation_sidecar(django_db_setup, django_db_blocker):
    """One MCP sidecar subprocess for the session, reading the test database (it only reads)."""
    with django_db_blocker.unblock():
        env = subprocess_env()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mcp_server", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def listening():
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0

    wait_for(listening, timeout=30)
    yield f"http://127.0.0.1:{port}/mcp"
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with django_db_blocker.unblock():
        _wait_for_backends_to_exit()


def _wait_for_backends_to_exit(timeout: float = 5.0) -> None:
    """Give PostgreSQL a moment to end the sidecar's sessions, so the test database can be dropped."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.1)


@pytest.fixture
def automation_mcp_url(_automation_sidecar, transactional_db, settings):
    """URL of the real MCP sidecar on the test database; settings.MCP_URL points at it.

    One `python -m mcp_server` process serves the whole session (the MCP tests' `mcp_sidecar`
    starts one per test, which these tests do not need: they never change its environment).
    """
    settings.MCP_URL = _automation_sidecar
    return _automation_sidecar


def mcp_key_for(tenant, tools=("get_user_profile", "analyze_customer", "get_conversation_data")) -> str:
    from anmei.mcp_admin.services import mcp_group_create

    _group, key = mcp_group_create(tenant=tenant, name=f"agent-{time.monotonic_ns()}", tool_names=list(tools))
    return key


@pytest.fixture
def fast_retries(tenant_a):
    """Tenant A's run-time settings with a short retry schedule (never the production 5/15/60 s)."""
    from anmei.automation.services import automation_settings_update

    return automation_settings_update(tenant_id=tenant_a.id, retry_countdowns=FAST_COUNTDOWNS, max_retries=3)


@pytest.fixture
def fake_push():
    from tests.fakes.fake_push import FakePush

    server = FakePush().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai():
    from tests.fakes.fake_openai import FakeOpenAI

    server = FakeOpenAI(api_key="sk-fake-123").start()
    yield server
    server.stop()


@pytest.fixture
def fake_dify(tenant_a, automation_mcp_url):
    """A fake Dify app whose agent calls our sidecar with its own MCP group key of tenant A."""
    from tests.fakes.fake_dify import FakeDify

    server = FakeDify(app_key="app-dify-secret", mcp_url=automation_mcp_url, mcp_key=mcp_key_for(tenant_a)).start()
    yield server
    server.stop()


def register(client, username: str, nickname: str = "", tenant: str = "alpha"):
    from tests.conftest import PASSWORD

    response = client.post(
        "/api/v1/auth/register",
        {"tenant": tenant, "username": username, "password": PASSWORD, "nickname": nickname},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


async def ws_connect(path: str, user):
    """Open a WebSocket as `user` and return it after `connection.ready`."""
    from anmei.accounts.services import ws_ticket_issue
    from tests.helpers import ws

    communicator = ws(path, await sync_to_async(ws_ticket_issue)(user=user))
    connected, _ = await communicator.connect()
    assert connected
    ready = await communicator.receive_json_from(timeout=5)
    assert ready["type"] == "connection.ready", ready
    return communicator


async def receive_type(communicator, event_type: str, timeout: float = 15.0) -> dict:
    """Receive events until one of `event_type` arrives (others, e.g. pongs, are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssertionError(f"no {event_type} event within {timeout}s")
        event = await communicator.receive_json_from(timeout=remaining)
        if event.get("type") == event_type:
            return event


@pytest.fixture
async def async_db_closed():
    """Close the DB connection the async ORM opened in asgiref's sync thread (else it outlives the test DB)."""
    yield
    from django.db import connections

    await sync_to_async(connections.close_all)()
