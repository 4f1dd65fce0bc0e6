"""A tiny threaded JSON HTTP server on 127.0.0.1:<free port> for the fake remote services."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Handler = Callable[[str, str, dict[str, str], Any], tuple[int, Any]]


class Raw:
    """A non-JSON answer (e.g. a `text/event-stream` body) a handler may return instead of a JSON value."""

    def __init__(self, content_type: str, data: bytes) -> None:
        self.content_type, self.data = content_type, data


class FakeServer:
    """Serve `handle(method, path, headers, json_body) -> (status, json_body)` until `stop()`."""

    def __init__(self, handle: Handler, host: str = "127.0.0.1", port: int = 0) -> None:

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    status, payload = handle(self.command, self.path, headers, body)
                except Exception as exc:  # noqa: BLE001 - a fake answers 500 like a broken service
                    status, payload = 500, {"error": f"{type(exc).__name__}: {exc}"}
                raw = isinstance(payload, Raw)
                data = payload.data if raw else json.dumps(payload, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", payload.content_type if raw else "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_POST = _serve
            do_GET = _serve

            def log_message(self, *args) -> None:
                return None

        self.httpd = ThreadingHTTPServer((host, port), _RequestHandler)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name=f"fake-{self.port}", daemon=True)

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
