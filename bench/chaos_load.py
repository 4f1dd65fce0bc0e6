"""The chaos suite's load: tenants, registrations, IM messages, voice messages, ends, blacklist changes.

Each `drive_*` sends its load at a steady rate and calls `on_fault()` (once) part-way through;
what was accepted is returned for the audit (`bench/chaos_audit.py`).
"""

from __future__ import annotations

import io
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
import wave
from collections import Counter
from concurrent.futures import ThreadPoolExecutor


def _send(request: urllib.request.Request) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except OSError:
        return 0, {}  # refused while the web process restarts: the client would retry


def post(port: int, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    url = f"http://127.0.0.1:{port}{path}"
    return _send(urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST"))


def post_file(port: int, path: str, fields: dict, audio: bytes, token: str) -> tuple[int, dict]:
    """A multipart upload with a `file`, as a bot sends a voice message."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="voice.wav"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode()
        + audio
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Authorization": f"Bearer {token}"}
    return _send(urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=b"".join(parts), headers=headers))


def speech_wav(seconds: float = 1.0) -> bytes:
    """A short 16 kHz mono WAV (a tone): the fake ASR server transcribes whatever it gets."""
    import math

    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        frames = (int(8000 * math.sin(2 * math.pi * 440 * i / 16000)) for i in range(int(16000 * seconds)))
        wav.writeframes(b"".join(v.to_bytes(2, "little", signed=True) for v in frames))
    return out.getvalue()


def setup_tenant(slug: str, push_url: str, bot_url: str, fake_bot, *, bots: int = 1):
    from anmei.accounts.models import User
    from anmei.accounts.services import user_create
    from anmei.automation.services import automation_settings_update
    from anmei.bots.services import bot_create, gateway_settings_get_or_create
    from anmei.tenants.models import Tenant

    tenant = Tenant.objects.create(name=slug, slug=slug, contact_email=f"ops@{slug}.test", status="approved")
    consultant = user_create(tenant=tenant, username="consultant", password=None, role=User.Role.CONSULTANT)
    automation_settings_update(
        tenant_id=tenant.id,
        retry_countdowns=[2, 4, 8],
        max_retries=5,
        notification_backend="webhook",
        push_gateway_url=push_url,
    )
    gateway = gateway_settings_get_or_create(tenant_id=tenant.id)
    gateway.retry_countdowns = [2, 4, 8]
    gateway.save()
    made = []
    for i in range(bots):
        bot, token, secret = bot_create(
            tenant_id=tenant.id, name=f"chaos-bot-{i}", platform="wecom", callback_url=bot_url
        )
        fake_bot.register(bot.id, secret)
        made.append((bot, token))
    return tenant, consultant, made


class Load:
    """Requests at a steady rate from a pool; `on_fault()` runs before request number `fault_at`."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.refused: Counter = Counter()
        self.latency: dict[int, float] = {}
        self.lock = threading.Lock()

    def run(self, calls: list, on_fault, fault_at: int) -> None:
        with ThreadPoolExecutor(16) as pool:
            for i, call in enumerate(calls):
                if i == fault_at:
                    on_fault()
                pool.submit(call)
                time.sleep(1 / self.rate)

    def refuse(self, what: str, status: int) -> None:
        with self.lock:
            self.refused[f"{what} {status}"] += 1


def drive(args, port: int, slug: str, bot_token: str, on_fault, *, nicknames: bool = False, im: bool = True) -> dict:
    """Registrations and IM messages (new customers writing to a bot nobody answers: auto-replies)."""
    load, registered, inbound, sent_at = Load(args.rate), [], [], {}
    count = args.registrations
    users = [f"im-{uuid.uuid4().hex[:8]}" for _ in range(max(1, args.messages // 3))]

    def register(n: int) -> None:
        body = {"tenant": slug, "username": f"c{n}-{uuid.uuid4().hex[:6]}", "password": "chaos-password-123"}
        if nicknames:
            body["nickname"] = f"客户{n}号"
        started = time.time()
        status, answer = post(port, "/api/v1/auth/register", body)
        with load.lock:
            if status == 201:
                registered.append(answer["id"])
                sent_at[answer["id"]] = started
            else:
                load.refused[f"register {status}"] += 1

    def message(n: int) -> None:
        body = {"platform": "wecom", "user_id": users[n % len(users)], "nickname": "客户", "type": "text"}
        status, answer = post(
            port, "/api/v1/bot/messages", {**body, "content": f"在吗 {n}", "message_id": f"m-{n}"}, bot_token
        )
        with load.lock:
            if status == 202:
                inbound.append(answer["message_id"])
            else:
                load.refused[f"message {status}"] += 1

    registrations = [lambda n=n: register(n) for n in range(count)]
    messages = [lambda n=n: message(n) for n in range(args.messages)] if im else []
    calls = []
    for i in range(max(len(registrations), len(messages))):  # interleaved
        calls += registrations[i : i + 1] + messages[i : i + 1]
    fault_at = max(
        1, len(calls) // (6 if nicknames else 2)
    )  # the MCP outage starts early: most registrations fall in it
    load.run(calls, on_fault, fault_at)
    return {
        "registered": registered,
        "inbound": sorted(set(inbound)),
        "refused": dict(load.refused),
        "sent_at": sent_at,
    }


def drive_voice(args, port: int, bot_token: str, on_fault) -> dict:
    """Voice messages of new IM customers; the ASR worker is killed while it transcribes."""
    load, voices, audio = Load(args.rate / 2), [], speech_wav()
    count = max(6, args.messages // 4)

    def voice(n: int) -> None:
        fields = {"platform": "wecom", "user_id": f"v-{uuid.uuid4().hex[:8]}", "nickname": "客户", "type": "voice"}
        status, answer = post_file(port, "/api/v1/bot/messages", {**fields, "message_id": f"v-{n}"}, audio, bot_token)
        with load.lock:
            if status == 202:
                voices.append(answer["message_id"])
            else:
                load.refused[f"voice {status}"] += 1

    load.run([lambda n=n: voice(n) for n in range(count)], on_fault, count // 2)
    return {"registered": [], "inbound": [], "voices": sorted(set(voices)), "refused": dict(load.refused)}


def drive_ends(args, port: int, slug: str, consultant_token: str, on_fault) -> dict:
    """Registrations, then their conversations ended by the consultant (each queues a summary)."""
    from anmei.conversations.models import Conversation

    registered = drive(args, port, slug, "", lambda: None, im=False)
    deadline = time.monotonic() + 60
    ids = registered["registered"]
    while time.monotonic() < deadline:  # the default conversations exist once the first step ran
        conversations = list(
            Conversation.objects.filter(customer_id__in=ids, is_default=True).values_list("id", flat=True)
        )
        if len(conversations) == len(ids):
            break
        time.sleep(1)
    load, ended = Load(args.rate), []

    def end(conversation_id: int) -> None:
        status, _ = post(port, f"/api/v1/conversations/{conversation_id}/end", {}, consultant_token)
        with load.lock:
            if status in (200, 202):
                ended.append(conversation_id)
            else:
                load.refuse("end", status)

    load.run([lambda c=c: end(c) for c in conversations], on_fault, len(conversations) // 2)
    refused = Counter(registered["refused"]) + load.refused
    return {**registered, "ended": sorted(set(ended)), "refused": dict(refused)}


def drive_blacklist(args, bots, fake_bot, tenant, on_fault) -> dict:
    """The bots' callback down past the push schedule for two changes, then back."""
    from anmei.blacklist.models import BlacklistBotCursor
    from anmei.blacklist.services import blacklist_entry_add

    fake_bot.down = True
    on_fault()
    for user in ("spam-a", "spam-b"):
        blacklist_entry_add(tenant_id=tenant.id, actor=None, platform="wecom", user_id=f"{user}-{uuid.uuid4().hex[:4]}")
    bot_ids = [bot.id for bot, _ in bots]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # every bot's schedule spent (the gateway's countdowns 2/4/8)
        cursors = list(BlacklistBotCursor.objects.filter(bot_id__in=bot_ids).values_list("attempts", flat=True))
        if len(cursors) == len(bot_ids) and all(a > 3 for a in cursors):
            break
        time.sleep(1)
    fake_bot.down = False
    return {"registered": [], "inbound": [], "bots": bot_ids, "refused": {}}
