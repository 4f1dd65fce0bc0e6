"""A fake Dify app speaking the chat-messages API (blocking mode).

Like a real Dify agent with our MCP server configured as a tool provider, it calls our sidecar
over streamable HTTP with its MCP group key to read the profile, then writes the greeting. When
that tool call fails (the sidecar down) it does what an agent app whose prompt names the input
variables does: greets by the `nickname` input, and fails (500) only when it has none.
Knobs for tests and the bench: `latency` (seconds), `mode` ("ok", "error500", "garbage"),
`failure_rate` (0..1, answers 500), `fail_next` (answers 500 to that many requests, then recovers),
and `requests` (what it was sent).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from typing import Any

from tests.fakes._http import FakeServer
from tests.fakes._mcp import mcp_call


class FakeDify:
    def __init__(
        self,
        *,
        app_key: str,
        mcp_url: str,
        mcp_key: str,
        app_id: str = "dify-app-1",
        latency: float = 0.0,
        failure_rate: float = 0.0,
        seed: int | None = None,
        port: int = 0,
    ) -> None:
        self.app_key = app_key
        self.mcp_url = mcp_url
        self.mcp_key = mcp_key
        self.app_id = app_id
        self.latency = latency
        self.failure_rate = failure_rate
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.failed = 0
        self.fail_next = 0
        self.profiles: list[dict[str, Any]] = []
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.server = FakeServer(self.handle, port=port)
        self.url = self.server.url

    def start(self) -> FakeDify:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if method == "POST" and path == "/_control" and isinstance(body, dict):
            self.latency = float(body.get("latency", self.latency))
            self.failure_rate = float(body.get("failure_rate", self.failure_rate))
            return 200, {
                "latency": self.latency,
                "failure_rate": self.failure_rate,
                "served": len(self.requests),
                "failed": self.failed,
            }
        if method != "POST" or path.rstrip("/") != "/v1/chat-messages":
            return 404, {"code": "not_found", "message": "Not Found", "status": 404}
        if headers.get("authorization") != f"Bearer {self.app_key}":
            return 401, {"code": "unauthorized", "message": "Access token is invalid", "status": 401}
        if not isinstance(body, dict) or not body.get("query") or body.get("response_mode") != "blocking":
            return 400, {"code": "invalid_param", "message": "query and response_mode are required", "status": 400}
        with self._lock:
            self.requests.append({"body": body, "headers": headers})
            fail = self._random.random() < self.failure_rate or self.fail_next > 0
            self.fail_next = max(self.fail_next - 1, 0)
        if self.latency:
            time.sleep(self.latency)
        if self.mode == "error500" or fail:
            with self._lock:
                self.failed += 1
            return 500, {
                "code": "internal_server_error",
                "message": "The server encountered an internal error.",
                "status": 500,
            }
        if self.mode == "garbage":
            return 200, {"event": "message", "answer": ""}
        inputs = body.get("inputs") or {}
        try:
            profile = mcp_call(
                self.mcp_url,
                self.mcp_key,
                "get_user_profile",
                {"user_id": int(inputs["user_id"])},
                caller_app_id=self.app_id,
                subject=inputs.get("anmei_subject", ""),
            )
        except Exception:  # noqa: BLE001 - the tool failed: the agent has only its inputs
            if not inputs.get("nickname"):
                raise
            profile = {"nickname": inputs["nickname"], "from": "inputs"}
        with self._lock:
            self.profiles.append(profile)
        name = profile.get("nickname") or profile.get("username")
        answer = f"{name}，您好！欢迎来到安美智享，我是您的专属AI咨询助手，有任何医美问题都可以问我哦～"
        return 200, {
            "event": "message",
            "task_id": str(uuid.uuid4()),
            "id": str(uuid.uuid4()),
            "message_id": str(uuid.uuid4()),
            "conversation_id": body.get("conversation_id") or str(uuid.uuid4()),
            "mode": "advanced-chat",
            "answer": answer,
            "metadata": {
                "usage": {
                    "prompt_tokens": 120,
                    "completion_tokens": 40,
                    "total_tokens": 160,
                    "total_price": "0.00032",
                    "currency": "USD",
                    "latency": self.latency,
                },
                "retriever_resources": [],
            },
            "created_at": int(time.time()),
        }


def main() -> None:
    """Run the fake as its own process (bench): `python -m tests.fakes.fake_dify --port N ...`.

    POST /_control {"latency": s, "failure_rate": f} changes its behaviour while it runs.
    """
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app-key", required=True)
    parser.add_argument("--mcp-url", required=True)
    parser.add_argument("--mcp-key", required=True)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--failure-rate", type=float, default=0.0)
    args = parser.parse_args()
    fake = FakeDify(
        app_key=args.app_key,
        mcp_url=args.mcp_url,
        mcp_key=args.mcp_key,
        latency=args.latency,
        failure_rate=args.failure_rate,
        port=args.port,
    )
    fake.server.httpd.serve_forever()


if __name__ == "__main__":
    main()
