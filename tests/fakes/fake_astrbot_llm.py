"""A fake AstrBot instance's `POST /astrbot-api/v1/llm/infer`: the bot's own LLM.

It checks the platform's signature (`X-Anmei-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>">` with the bot's secret), keeps what it was sent in `requests`, and answers
`{"text", "model", "usage"}`: the next text from `replies`, else a fixed answer. `mode = "error500"`
makes it fail like a broken LLM behind the bot. The bot's other callbacks are acknowledged (200).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INFER_PATH = "/astrbot-api/v1/llm/infer"


class FakeAstrBotLLM:
    def __init__(self, *, secret: str = "", model: str = "astrbot-llm") -> None:
        self.secret = secret
        self.model = model
        self.mode = "ok"
        self.replies: deque[str] = deque()
        self.requests: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                return

            def do_POST(self):  # noqa: N802 - http.server naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = fake._handle(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
                data = json.dumps(payload, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FakeAstrBotLLM:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        if path != INFER_PATH:  # the bot's other callbacks (message/send, config/update) are acknowledged
            return 200, {"ok": True}
        timestamp = headers.get("x-anmei-timestamp", "")
        expected = (
            "sha256=" + hmac.new(self.secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        )
        if not hmac.compare_digest(headers.get("x-anmei-signature", ""), expected):
            return 401, {"error": "bad signature"}
        try:
            body = json.loads(raw)
        except ValueError:
            return 400, {"error": "invalid JSON"}
        if not isinstance(body, dict) or not isinstance(body.get("context"), list) or "llm_config" not in body:
            return 400, {"error": "llm_config and context are required"}
        with self.lock:
            self.requests.append(body)
            text = self.replies.popleft() if self.replies else "您好，我是机器人助手，请问有什么可以帮您？"
        if self.mode == "error500":
            return 500, {"error": "llm provider failed"}
        return 200, {
            "text": text,
            "model": self.model,
            "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
        }
