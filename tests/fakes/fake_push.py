"""A fake push gateway: accepts notification webhooks, or fails the first `fail_first` of them."""

from __future__ import annotations

import threading
from typing import Any

from tests.fakes._http import FakeServer


class FakePush:
    def __init__(self, *, fail_first: int = 0, fail_status: int = 503) -> None:
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.always_fail = False
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self._lock = threading.Lock()
        self.server = FakeServer(self.handle)
        self.url = self.server.url + "/push"

    def start(self) -> FakePush:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if method != "POST" or path != "/push":
            return 404, {"error": "not found"}
        with self._lock:
            self.attempts += 1
            if self.always_fail or self.attempts <= self.fail_first:
                return self.fail_status, {"error": "gateway unavailable"}
            self.received.append({"body": body, "idempotency_key": headers.get("idempotency-key", "")})
        return 202, {"accepted": True}
