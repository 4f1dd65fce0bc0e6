"""A fake OpenAI-compatible `/v1/chat/completions`: first a tool call, then a final answer.

Given the user prompt it asks for `get_user_profile` with the user id it finds in the prompt;
given the tool's result it greets the customer by the nickname in it; given no tools but a system
prompt naming the customer's nickname (`客户昵称：…`), it greets by that. `requests` keeps what it
was sent so tests can check the tool list and the tool-result round trip. Texts put in `replies`
are answered first, one per request, in order (no tool call). A request with `"stream": true` is
answered as server-sent events (`chat.completion.chunk` deltas, a usage chunk, `data: [DONE]`).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import deque
from typing import Any

from tests.fakes._http import FakeServer, Raw


class FakeOpenAI:
    def __init__(self, *, api_key: str = "sk-test", model: str = "fake-gpt", latency: float = 0.0) -> None:
        self.api_key = api_key
        self.model = model
        self.latency = latency
        self.mode = "ok"
        self.requests: list[dict[str, Any]] = []
        self.replies: deque[str] = deque()
        self.default_reply: str | None = None  # answered once `replies` is empty (benches)
        self.usage = {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70}
        self._lock = threading.Lock()
        self.server = FakeServer(self.handle)
        self.url = self.server.url

    def start(self) -> FakeOpenAI:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def _completion(self, message: dict[str, Any], finish: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": dict(self.usage) if self.usage else None,
        }

    def _stream(self, text: str) -> Raw:
        """The same answer as SSE chunks of a few characters each, then usage, then [DONE]."""
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion.chunk", "model": self.model}
        chunks = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
        chunks += [
            {**base, "choices": [{"index": 0, "delta": {"content": text[i : i + 8]}, "finish_reason": None}]}
            for i in range(0, len(text), 8)
        ]
        chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        chunks.append({**base, "choices": [], "usage": dict(self.usage)})
        body = "".join(f"data: {json.dumps(c, ensure_ascii=False)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return Raw("text/event-stream", body.encode())

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, Any]:
        if method != "POST" or path.rstrip("/") != "/v1/chat/completions":
            return 404, {"error": {"message": "not found", "type": "invalid_request_error"}}
        if headers.get("authorization") != f"Bearer {self.api_key}":
            return 401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
        if not isinstance(body, dict) or not body.get("messages"):
            return 400, {"error": {"message": "messages is required", "type": "invalid_request_error"}}
        with self._lock:
            self.requests.append(body)
        if self.latency:
            time.sleep(self.latency)
        if self.mode == "error500":
            return 500, {"error": {"message": "The server had an error", "type": "server_error"}}
        with self._lock:
            scripted = self.replies.popleft() if self.replies else self.default_reply
        if scripted is not None:
            if body.get("stream"):
                return 200, self._stream(scripted)
            return 200, self._completion({"role": "assistant", "content": scripted}, "stop")
        messages = body["messages"]
        last = messages[-1]
        tool_names = {t["function"]["name"] for t in body.get("tools") or []}
        if last["role"] == "user" and "get_user_profile" in tool_names:
            match = re.search(r"(\d+)", last.get("content") or "")
            arguments = json.dumps({"user_id": int(match.group(1)) if match else 0})
            call = {
                "id": f"call_{uuid.uuid4().hex[:8]}",
                "type": "function",
                "function": {"name": "get_user_profile", "arguments": arguments},
            }
            return 200, self._completion({"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls")
        if last["role"] == "tool":
            try:
                profile = json.loads(last["content"])
            except ValueError:
                profile = {}
            name = profile.get("nickname") or profile.get("username") or "您"
            text = f"亲爱的{name}，欢迎加入安美智享！我是您的AI美丽顾问，随时为您解答医美问题。"
            return 200, self._completion({"role": "assistant", "content": text}, "stop")
        system = " ".join(m.get("content") or "" for m in messages if m.get("role") == "system")
        named = re.search(r"客户昵称：(\S+)", system)
        if last["role"] == "user" and named:
            text = f"亲爱的{named.group(1)}，欢迎加入安美智享！我是您的AI美丽顾问，随时为您解答医美问题。"
            return 200, self._completion({"role": "assistant", "content": text}, "stop")
        return 200, self._completion({"role": "assistant", "content": "您好，请问有什么可以帮您？"}, "stop")
