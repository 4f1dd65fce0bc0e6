"""Fixtures for the browser tests (a pytest plugin loaded by tests/conftest.py).

The pages run in Debian's Chromium driven by Playwright, against a real daphne process serving the
*test* database and Redis DB; Celery work (the registration automation) runs on the in-process
`celery_worker`. Screenshots go to var/test-artifacts/ (gitignored) for a person to look at.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures_automation import _wait_for_backends_to_exit, free_port, wait_for
from tests.fixtures_mcp import database_url_for_children

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "var" / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


class LiveServer:
    """`python -m daphne` on a fixed free port; `restart()` kills it and starts it again (same URL)."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def _listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "anmei.asgi:application"],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._listening, timeout=30)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        wait_for(lambda: not self._listening(), timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def _browser_server(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        from django.conf import settings

        env = dict(os.environ)
        env.update(
            {
                "DATABASE_URL": database_url_for_children(),
                "REDIS_URL": settings.REDIS_URL,
                "SECRET_KEY": settings.SECRET_KEY,
                "PYTHONPATH": str(ROOT),
                "THROTTLE_AUTH_RATE": "1000/min",  # every test logs several people in
                "LOG_LEVEL": "WARNING",
                "DB_POOL_MAX_SIZE": "4",
            }
        )
    server = LiveServer(env)
    server.start()
    yield server
    server.stop()
    with django_db_blocker.unblock():
        _wait_for_backends_to_exit()


@pytest.fixture
def web_server(_browser_server, transactional_db):
    """The running daphne (URL in `.url`); the test's rows are committed so it sees them."""
    return _browser_server


@pytest.fixture(scope="module")
def _chromium():
    """Chromium for one test module: Playwright's sync API keeps an event loop on the main thread
    while it runs, which the async tests of later modules (pytest-asyncio) cannot share."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium fonts-noto-cjk (see .ci/run)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an asyncio loop registered on this thread while it runs, which
    # Django's async-safety check mistakes for async code: the ORM calls here are plain sync code.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    try:
        yield playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def browser_context(_chromium, request):
    """`browser_context()` opens a fresh context (its own sessionStorage: one person); all close after."""
    contexts = []

    def open_context(**options):
        context = _chromium.new_context(**{"viewport": {"width": 1280, "height": 800}, "locale": "zh-CN", **options})
        context.set_default_timeout(15000)
        contexts.append(context)
        return context

    yield open_context
    for context in contexts:
        context.close()
    from django.db import connections

    connections.close_all()  # the ones this test's ORM calls opened under Playwright's loop


@pytest.fixture
def screenshot(request):
    """`screenshot(page, "name")` saves var/test-artifacts/<test>-<name>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
