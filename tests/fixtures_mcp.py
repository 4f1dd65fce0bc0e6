"""Fixtures for the MCP tests (a pytest plugin loaded by tests/conftest.py).

`mcp_sidecar` starts the real sidecar (`python -m mcp_server`) on a free port against the *test*
database and Redis DB, and stops it with SIGTERM so the call-log flush on shutdown is exercised.
Tests talk to it with the real `mcp` SDK client over streamable HTTP (`mcp_call`, `mcp_session`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import poll

ROOT = Path(__file__).resolve().parent.parent
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_children() -> str:
    """A DATABASE_URL for the database pytest-django created (test_…), for child processes."""
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = db.get("HOST") or "127.0.0.1"
    port = f":{db['PORT']}" if db.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{db['NAME']}"


def sidecar_env(**overrides: str) -> dict[str, str]:
    """The environment a child sidecar needs to share this test run's database, Redis and secrets."""
    from django.conf import settings

    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "anmei.settings",
            "DATABASE_URL": database_url_for_children(),
            "REDIS_URL": settings.REDIS_URL,
            "SECRET_KEY": settings.SECRET_KEY,
            "FIELD_ENCRYPTION_KEY": settings.FIELD_ENCRYPTION_KEY or "",
            "MCP_HOST": "127.0.0.1",
            "MCP_LOG_FLUSH_SECONDS": "0.05",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


@dataclass
class Sidecar:
    url: str
    port: int
    process: subprocess.Popen
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (graceful: uvicorn stops, the call-log queue is drained) and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode


def start_sidecar(**env_overrides: str) -> Sidecar:
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="mcp-sidecar-", suffix=".log", delete=False)
    env = sidecar_env(MCP_PORT=str(port), **env_overrides)
    process = subprocess.Popen([PYTHON, "-m", "mcp_server"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    sidecar = Sidecar(url=f"http://127.0.0.1:{port}/mcp", port=port, process=process, log_path=Path(log.name), env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"mcp sidecar exited with {process.returncode}:\n{sidecar.output()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return sidecar
        time.sleep(0.05)
    sidecar.stop()
    raise RuntimeError(f"mcp sidecar did not listen on {port}:\n{sidecar.output()}")


@pytest.fixture
def mcp_sidecar_factory(transactional_db):
    """`mcp_sidecar_factory(**env)` starts a sidecar with extra environment; all are stopped at teardown."""
    started: list[Sidecar] = []

    def factory(**env_overrides: str) -> Sidecar:
        sidecar = start_sidecar(**env_overrides)
        started.append(sidecar)
        return sidecar

    yield factory
    for sidecar in started:
        sidecar.stop()
        sidecar.log_path.unlink(missing_ok=True)


@pytest.fixture
def mcp_sidecar(mcp_sidecar_factory) -> Sidecar:
    """The real sidecar on a free port against the test database; `.url` is its /mcp endpoint."""
    return mcp_sidecar_factory()


def make_mcp_group(tenant, name: str = "dify", tool_names: list[str] | None = None, created_by=None):
    """Create a tool group (and the tenant's tool rows) and return `(group, plain key)`."""
    from anmei.mcp_admin.services import mcp_group_create

    return mcp_group_create(tenant=tenant, name=name, created_by=created_by, tool_names=tool_names)


@pytest.fixture
def mcp_group_key():
    """`mcp_group_key(tenant, name="dify", tool_names=None)` → `(group, key)`."""
    return make_mcp_group


def mcp_headers(key: str | None = None, caller_app_id: str | None = None, subject: str | None = None) -> dict:
    headers = {}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    if caller_app_id is not None:
        headers["X-Caller-App-Id"] = caller_app_id
    if subject is not None:
        headers["X-Anmei-Subject"] = subject
    return headers


@contextlib.asynccontextmanager
async def mcp_session(url: str, headers: dict | None = None) -> AsyncIterator[Any]:
    """An initialised `mcp.ClientSession` over streamable HTTP with these headers on every request.

    `session.http_client` is the underlying httpx2 client: change `session.http_client.headers` to
    send other credentials on the next call of the same session.
    """
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async with httpx2.AsyncClient(headers=headers or {}, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                await session.initialize()
                session.http_client = http
                yield session


def mcp_call(url: str, tool: str, arguments: dict | None = None, **header_kwargs: Any):
    """Call one tool in a fresh session (sync helper for sync tests); returns the CallToolResult."""

    async def go():
        async with mcp_session(url, mcp_headers(**header_kwargs)) as session:
            return await session.call_tool(tool, arguments or {})

    return asyncio.run(go())


def mcp_error_code(result) -> str | None:
    """The `code` of a refused call's structured error, None for a success."""
    if not result.is_error:
        return None
    return (result.structured_content or {}).get("error", {}).get("code")


def wait_call_logs(count: int, timeout: float = 10.0, **filters: Any) -> list:
    """Wait until at least `count` MCPCallLog rows match `filters`; return them oldest first."""
    from anmei.mcp_admin.models import MCPCallLog

    def rows():
        found = list(MCPCallLog.objects.filter(**filters).order_by("created_at", "id"))
        return found if len(found) >= count else None

    return poll(rows, timeout) or list(MCPCallLog.objects.filter(**filters).order_by("created_at", "id"))
