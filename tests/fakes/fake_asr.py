"""A fake OpenAI-compatible `POST /v1/audio/transcriptions` server (multipart in, verbose JSON out).

`statuses` is a queue of HTTP statuses to answer before succeeding (e.g. [503, 503] → two failures,
then the transcript); `delays` stalls the next requests (a server too slow for the client's timeout).
`requests` records what each call carried, including the WAV it received.
"""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRANSCRIPT = "我想预约下周二的皮肤护理咨询"


class FakeAsrServer:
    def __init__(self, *, text: str = TRANSCRIPT, language: str = "zh", avg_logprob: float = -0.1) -> None:
        self.text, self.language, self.avg_logprob = text, language, avg_logprob
        self.statuses: list[int] = []
        self.delays: list[float] = []  # seconds to stall before answering, one per request (then none)
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = fake.handle(self.path, self.headers.get("Content-Type", ""), self.headers, raw)
                data = json.dumps(body, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> FakeAsrServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def handle(self, path: str, content_type: str, headers, raw: bytes) -> tuple[int, Any]:
        if path != "/v1/audio/transcriptions" or not content_type.startswith("multipart/form-data"):
            return 404, {"error": {"message": "not found"}}
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        fields: dict[str, Any] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            fields[name] = part.get_content() if part.get_filename() is None else part.get_payload(decode=True)
        audio = fields.get("file") or b""
        try:
            with wave.open(io.BytesIO(audio)) as wav:
                received = {"rate": wav.getframerate(), "channels": wav.getnchannels(), "frames": wav.getnframes()}
        except (wave.Error, EOFError):
            received = None
        with self._lock:
            self.requests.append(
                {
                    "model": fields.get("model"),
                    "language": fields.get("language"),
                    "format": fields.get("response_format"),
                    "wav": received,
                    "authorization": headers.get("Authorization"),
                }
            )
            status = self.statuses.pop(0) if self.statuses else 200
            delay = self.delays.pop(0) if self.delays else 0.0
        if delay:
            time.sleep(delay)
        if status != 200:
            return status, {"error": {"message": f"fake failure {status}"}}
        if received is None:
            return 400, {"error": {"message": "could not read the audio"}}
        duration = round(received["frames"] / received["rate"], 2)
        return 200, {
            "task": "transcribe",
            "language": self.language,
            "duration": duration,
            "text": self.text,
            "segments": [
                {
                    "id": 0,
                    "start": 0.0,
                    "end": duration,
                    "text": self.text,
                    "tokens": [1, 2, 3, 4],
                    "avg_logprob": self.avg_logprob,
                }
            ],
        }
