"""A fake IM bot (AstrBot-like) HTTP server on 127.0.0.1 that speaks the platform→bot protocol.

It verifies `X-Anmei-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with each bot's
secret (registered by bot id, sent in `X-Anmei-Bot-Id`), records every request, and answers with
a scripted status per bot (e.g. 500, 500, then 200) so tests can drive the retry schedule.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    bot_id: int | None
    headers: dict[str, str]
    raw: bytes
    body: Any
    signature_ok: bool
    answered: int
    at: float = field(default_factory=time.monotonic)


class FakeBotServer:
    """Start with `start()`, point bots' callback_url at `url` (or `url_for(bot_id)`), stop with `stop()`."""

    def __init__(self) -> None:
        self.secrets: dict[int, str] = {}
        self.scripts: dict[int, deque[int]] = defaultdict(deque)
        self.received: list[Received] = []
        self.stall_when = None  # predicate(body): such requests wait for `release()` before answering
        self.down = False  # while True every request is answered 503 (the callback is down)
        self.released = threading.Event()
        self.lock = threading.RLock()
        self.condition = threading.Condition(self.lock)
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output quiet
                return

            def do_POST(self):  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                status = server._handle(self.path, dict(self.headers.items()), raw)
                payload = b'{"ok": true}' if 200 <= status < 300 else b'{"ok": false}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> FakeBotServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def register(self, bot_id: int, secret: str) -> None:
        self.secrets[bot_id] = secret

    def script(self, bot_id: int, *statuses: int) -> None:
        """Answer the next requests from this bot with these statuses (then 200)."""
        with self.lock:
            self.scripts[bot_id].extend(statuses)

    @staticmethod
    def verify(secret: str, headers: dict[str, str], raw: bytes) -> bool:
        timestamp = headers.get("X-Anmei-Timestamp", "")
        signature = headers.get("X-Anmei-Signature", "")
        if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
            return False
        expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, signature)

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> int:
        bot_header = headers.get("X-Anmei-Bot-Id", "")
        bot_id = int(bot_header) if bot_header.isdigit() else None
        secret = self.secrets.get(bot_id) if bot_id is not None else None
        ok = secret is not None and self.verify(secret, headers, raw)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self.condition:
            script = self.scripts.get(bot_id)
            status = script.popleft() if script else 200
            if self.down:
                status = 503
            if not ok:
                status = 401
            self.received.append(Received(path, bot_id, headers, raw, body, ok, status))
            self.condition.notify_all()
            stall = self.stall_when is not None and self.stall_when(body)
        if stall:
            self.released.wait(60)
        return status

    def release(self) -> None:
        """Let stalled requests answer (their sender may be gone by then)."""
        self.released.set()

    def requests(self, *, bot_id: int | None = None, path: str | None = None) -> list[Received]:
        with self.lock:
            return [
                r for r in self.received if (bot_id is None or r.bot_id == bot_id) and (path is None or r.path == path)
            ]

    def wait_for(self, predicate, timeout: float = 10.0) -> bool:
        """Block until `predicate(received_list)` is true (or time out); returns whether it became true."""
        deadline = time.monotonic() + timeout
        with self.condition:
            while not predicate(list(self.received)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self.condition.wait(remaining)
            return True
