"""The web process on SIGTERM: refuses new connections, finishes in-flight requests, exits."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.helpers import poll

ROOT = Path(__file__).resolve().parent.parent
SLOW_SECONDS = 4  # /api/v1/health waits this long for a worker's ping (none runs here)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _send_request(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(b"GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    with sock:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits():
    # Given the web process serving, with five slow requests in flight
    port = _free_port()
    env = {**os.environ, "HEALTH_CHECK_TIMEOUT_SECONDS": str(SLOW_SECONDS), "WEB_SHUTDOWN_GRACE_SECONDS": "20"}
    web = subprocess.Popen(
        [sys.executable, "-m", "anmei.serve", "-v", "0", "-b", "127.0.0.1", "-p", str(port), "anmei.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert poll(lambda: _accepts(port), timeout=60, interval=0.1), "web never listened"
        sockets = [_send_request(port) for _ in range(5)]
        time.sleep(1)  # let the requests reach the application (each then runs SLOW_SECONDS)
        # When it is told to stop
        signalled = time.monotonic()
        web.send_signal(signal.SIGTERM)
        # Then it stops accepting at once
        assert poll(lambda: not _accepts(port), timeout=SLOW_SECONDS - 1.5, interval=0.05)
        # And every in-flight request still gets its whole answer
        with ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(_read_all, sockets))
        for answer in answers:
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 503"), answer[:200]
            assert b'"failing":["workers"]' in body, body[:300]
        # And then the process exits by itself, well within the grace period
        assert web.wait(timeout=20) == 0
        assert time.monotonic() - signalled < 20
    finally:
        if web.poll() is None:
            web.kill()
            web.wait()
