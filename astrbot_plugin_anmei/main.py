"""Anmei for AstrBot: the IM side of an Anmei tenant (forwarding, blacklist, replies, the bot's LLM).

Every message the instance receives is forwarded to Anmei (`POST /api/v1/bot/messages`) unless
its sender is on the cached blacklist; Anmei's consultants answer from the console and their
replies come back through this plugin's own listener (`/astrbot-api/v1/...`, signed by Anmei).
The interface is described in the repository's README, "Connect WeChat through AstrBot".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import astrbot.api.message_components as Comp
from aiohttp import web
from astrbot.api import AstrBotConfig, logger
from astrbot.api.event import AstrMessageEvent, MessageChain, filter
from astrbot.api.star import Context, Star, StarTools

from .anmei_core import (
    Blacklist,
    Delivered,
    Outbox,
    OutboxItem,
    Sessions,
    SignatureVerifier,
    Store,
    drain,
    outcome_of,
)

PLUGIN_NAME = "astrbot_plugin_anmei"

# AstrBot adapter type → Anmei platform name; others use the `platform` config value.
PLATFORMS = {
    "aiocqhttp": "qq",
    "qq_official": "qq",
    "qq_official_webhook": "qq",
    "wecom": "wecom",
    "wecom_ai_bot": "wecom",
    "weixin_official_account": "wechat",
    "weixin_oc": "wechat",
    "telegram": "telegram",
    "dingtalk": "dingtalk",
    "lark": "feishu",
    "discord": "discord",
    "slack": "slack",
}


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))


class AnmeiPlugin(Star):
    def __init__(self, context: Context, config: AstrBotConfig) -> None:
        super().__init__(context)
        self.config = config
        data_dir = os.path.abspath(str(StarTools.get_data_dir(PLUGIN_NAME)))
        os.makedirs(data_dir, exist_ok=True)
        self.store = Store(os.path.join(data_dir, "anmei.sqlite3"))
        self.blacklist = Blacklist(self.store)  # from SQLite at once: blocking works before any pull
        self.outbox = Outbox(self.store)
        self.sessions = Sessions(self.store)
        self.delivered = Delivered(self.store)
        self.verifier = SignatureVerifier(str(config.get("bot_secret", "") or ""))
        self.anmei_reachable = False
        self.http: aiohttp.ClientSession | None = None
        self.runner: web.AppRunner | None = None
        self.tasks: list[asyncio.Task] = []
        self._wake = asyncio.Event()
        self._pull_lock = asyncio.Lock()
        self._drain_lock = asyncio.Lock()

    # ---- configuration ---------------------------------------------------------------------
    def _conf(self, key: str, default: Any) -> Any:
        value = self.config.get(key, default)
        return default if value in (None, "") else value

    @property
    def base_url(self) -> str:
        return str(self._conf("anmei_base_url", "http://127.0.0.1:8000")).rstrip("/")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._conf('bot_token', '')}"}

    def _platform(self, event: AstrMessageEvent) -> str:
        return PLATFORMS.get(str(event.get_platform_name()), str(self._conf("platform", "other")))

    # ---- lifecycle -------------------------------------------------------------------------
    async def initialize(self) -> None:
        timeout = aiohttp.ClientTimeout(total=float(self._conf("request_timeout_seconds", 10)))
        self.http = aiohttp.ClientSession(timeout=timeout)
        app = web.Application(middlewares=[self._verify_middleware], client_max_size=20 * 1024 * 1024)
        app.router.add_post("/astrbot-api/v1/message/send", self._message_send)
        app.router.add_post("/astrbot-api/v1/config/update", self._config_update)
        app.router.add_post("/astrbot-api/v1/llm/infer", self._llm_infer)
        app.router.add_get("/astrbot-api/v1/health", self._health)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        host, port = str(self._conf("listen_host", "127.0.0.1")), int(self._conf("listen_port", 6196))
        await web.TCPSite(self.runner, host, port).start()
        logger.info(f"[anmei] listening on http://{host}:{port}, blacklist v{self.blacklist.version} from disk")
        self.tasks = [asyncio.create_task(self._background())]

    async def terminate(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
                pass
        if self.runner is not None:
            await self.runner.cleanup()
        if self.http is not None:
            await self.http.close()
        self.store.close()

    async def _background(self) -> None:
        """Full blacklist pull at start (retried), then heartbeats; the outbox drains whenever Anmei answers."""
        interval = float(self._conf("heartbeat_interval_seconds", 30))
        retry = float(self._conf("retry_interval_seconds", 5))
        pulled = False
        while True:
            try:
                if not pulled:
                    pulled = await self.blacklist_pull()
                await self._heartbeat()
                if self.outbox.count():
                    await self.drain_outbox()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a background loop must survive anything
                logger.warning(f"[anmei] background step failed: {type(exc).__name__}")
            wait = retry if (not pulled or self.outbox.count() or not self.anmei_reachable) else interval
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            except TimeoutError:
                pass

    # ---- talking to Anmei ------------------------------------------------------------------
    async def _post(self, path: str, payload: dict[str, Any], file: bytes | None = None, filename: str | None = None):
        """POST to Anmei; the HTTP status, or None when it could not be reached."""
        assert self.http is not None
        try:
            if file is None:
                request = self.http.post(self.base_url + path, json=payload, headers=self._headers())
            else:
                form = aiohttp.FormData()
                for key, value in payload.items():
                    form.add_field(key, str(value))
                form.add_field("file", file, filename=filename or "file.bin", content_type="application/octet-stream")
                request = self.http.post(self.base_url + path, data=form, headers=self._headers())
            async with request as response:
                await response.read()
                self.anmei_reachable = True
                if response.status >= 400:
                    logger.warning(f"[anmei] {path} answered {response.status}")
                return response.status
        except (TimeoutError, aiohttp.ClientError, OSError):
            self.anmei_reachable = False
            return None

    async def _send_item(self, item: OutboxItem) -> int | None:
        path = "/api/v1/bot/messages" if item.kind == "message" else "/api/v1/bot/events"
        return await self._post(path, item.payload, item.file, item.filename)

    async def deliver(self, kind: str, payload: dict[str, Any], file: bytes | None = None, filename: str | None = None):
        """Send a forward or report now, or keep it in the outbox (behind anything already queued)."""
        if not self.outbox.count():
            status = await self._send_item(OutboxItem(0, kind, payload, file, filename))
            if outcome_of(status) != "keep":
                return status
        self.outbox.put(kind, payload, file, filename)
        self._wake.set()
        return None

    async def drain_outbox(self) -> int:
        async with self._drain_lock:
            sent, _ = await drain(self.outbox, self._send_item)
        return sent

    async def blacklist_pull(self) -> bool:
        """Replace the cache with Anmei's full list (`GET /api/v1/bot/blacklist`); False when it failed."""
        assert self.http is not None
        async with self._pull_lock:
            try:
                async with self.http.get(self.base_url + "/api/v1/bot/blacklist", headers=self._headers()) as response:
                    if response.status != 200:
                        return False
                    body = await response.json()
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError):
                self.anmei_reachable = False
                return False
            self.anmei_reachable = True
            self.blacklist.replace(int(body.get("version") or 0), body.get("entries") or [])
            logger.info(f"[anmei] blacklist pulled: v{self.blacklist.version}, {len(self.blacklist.entries)} entries")
            return True

    async def _heartbeat(self) -> None:
        await self._post("/api/v1/bot/heartbeat", self._health_body())

    # ---- inbound IM messages ---------------------------------------------------------------
    @filter.event_message_type(filter.EventMessageType.ALL, priority=sys.maxsize)
    async def on_message(self, event: AstrMessageEvent):
        platform = self._platform(event)
        user_id = str(event.get_sender_id())
        if self.blacklist.is_blocked(platform, user_id):
            event.stop_event()  # no plugin, no LLM: a blocked customer is not answered
            report = {
                "event": "message_blocked",
                "platform": platform,
                "user_id": user_id,
                "message_status": "blocked_by_blacklist",
                "timestamp": _now_iso(),
            }
            await self.deliver("event", report)
            return
        self.sessions.remember(platform, user_id, event.unified_msg_origin)
        base = {"platform": platform, "user_id": user_id, "nickname": str(event.get_sender_name() or "")[:64]}
        message_id = str(event.message_obj.message_id or f"{event.unified_msg_origin}:{time.time_ns()}")
        forwards = await self._forwards(event, base, message_id)
        for payload, file, filename in forwards:
            await self.deliver("message", payload, file, filename)
        if forwards and self._conf("anmei_owns_reply", True):
            event.stop_event()

    async def _forwards(self, event: AstrMessageEvent, base: dict[str, Any], message_id: str):
        """One forward per part: the text of the message, then each voice, image and file."""
        out: list[tuple[dict[str, Any], bytes | None, str | None]] = []
        text = "".join(c.text for c in event.get_messages() if isinstance(c, Comp.Plain)).strip()
        if text:
            out.append(({**base, "type": "text", "content": text, "message_id": message_id}, None, None))
        for index, component in enumerate(event.get_messages()):
            kind = {Comp.Record: "voice", Comp.Image: "image", Comp.File: "file"}.get(type(component))
            if kind is None:
                continue
            try:
                if isinstance(component, Comp.File):
                    path = await component.get_file()
                else:
                    path = await component.convert_to_file_path()
                with open(path, "rb") as fh:
                    data = fh.read()
            except Exception as exc:  # noqa: BLE001 - an unreadable attachment is skipped, not fatal
                logger.warning(f"[anmei] could not read a {kind} attachment: {type(exc).__name__}")
                continue
            part_id = message_id if not out else f"{message_id}:{index}"
            out.append(({**base, "type": kind, "message_id": part_id}, data, os.path.basename(path)))
        return out

    # ---- Anmei's calls to this instance ----------------------------------------------------
    @web.middleware
    async def _verify_middleware(self, request: web.Request, handler):
        if request.method == "POST":
            body = await request.read()
            error = self.verifier.verify(
                request.headers.get("X-Anmei-Timestamp"), request.headers.get("X-Anmei-Signature"), body
            )
            if error:
                return _json(401, {"error": "invalid_signature", "message": error})
            try:
                request["body"] = json.loads(body or b"{}")
            except ValueError:
                return _json(400, {"error": "invalid_json", "message": "the body is not JSON"})
            if not isinstance(request["body"], dict):
                return _json(400, {"error": "invalid_json", "message": "the body must be an object"})
        return await handler(request)

    async def _message_send(self, request: web.Request) -> web.Response:
        body = request["body"]
        message_id = str(body.get("message_id") or request.headers.get("X-Anmei-Message-Id") or "")
        platform, user_id = str(body.get("platform") or ""), str(body.get("user_id") or "")
        if not message_id or not user_id:
            return _json(400, {"error": "invalid_request", "message": "message_id and user_id are required"})
        if self.delivered.seen(message_id):
            return _json(200, {"status": "sent", "duplicate": True})
        origin = self.sessions.origin(platform, user_id)
        if origin is None:
            return _json(404, {"error": "unknown_user", "message": "no IM session known for this user"})
        chain = MessageChain()
        media_url = str(body.get("media_url") or "")
        if media_url.startswith("/"):
            media_url = self.base_url + media_url  # Anmei's signed link, relative to its address
        if body.get("type") == "image" and media_url:
            chain.chain.append(Comp.Image.fromURL(media_url))
            if body.get("content"):
                chain.message(str(body["content"]))
        else:
            content = str(body.get("content") or "")
            if body.get("type") in ("voice", "file") and media_url:
                content = content or media_url
            if not content:
                return _json(400, {"error": "invalid_request", "message": "nothing to send"})
            chain.message(content)
        try:
            found = await self.context.send_message(origin, chain)
        except Exception as exc:  # noqa: BLE001 - the platform refused: Anmei retries
            logger.warning(f"[anmei] send failed: {type(exc).__name__}")
            return _json(502, {"error": "platform_error", "message": "the IM platform did not accept the message"})
        if found is False:
            return _json(503, {"error": "platform_unavailable", "message": "the IM adapter is not running"})
        self.delivered.mark(message_id)
        return _json(200, {"status": "sent"})

    async def _config_update(self, request: web.Request) -> web.Response:
        body = request["body"]
        config_type = body.get("config_type")
        try:
            version = int(body.get("version"))
        except (TypeError, ValueError):
            return _json(400, {"error": "invalid_request", "message": "version must be an integer"})
        if config_type == "bot_config":
            if version > int(self.store.meta_get("bot_config_version", "0")):
                self.store.meta_set("bot_config_version", str(version))
            return _json(200, {"status": "ok", "version": version})
        if config_type != "blacklist":
            return _json(400, {"error": "invalid_request", "message": "unknown config_type"})
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        entries = data.get("entries") if isinstance(data.get("entries"), list) else [data] if data else []
        if not all(isinstance(e, dict) and e.get("platform") and e.get("user_id") for e in entries):
            return _json(400, {"error": "invalid_request", "message": "entries need platform and user_id"})
        if body.get("action") not in ("add", "remove"):
            return _json(400, {"error": "invalid_request", "message": "action must be add or remove"})
        outcome = self.blacklist.apply(version, body["action"], entries)
        if outcome == "gap":
            if not await self.blacklist_pull() or self.blacklist.version < version:
                return _json(503, {"error": "pull_failed", "message": "missing versions; the full pull failed"})
            outcome = "pulled"
        return _json(200, {"status": outcome, "version": self.blacklist.version})

    async def _llm_infer(self, request: web.Request) -> web.Response:
        body = request["body"]
        context = body.get("context")
        if not isinstance(context, list) or not context:
            return _json(400, {"error": "invalid_request", "message": "context is required"})
        provider = self.context.get_using_provider()
        if provider is None:
            return _json(503, {"error": "no_provider", "message": "this AstrBot instance has no LLM provider"})
        system = "\n".join(str(m.get("content") or "") for m in context if m.get("role") == "system")
        turns = [
            {"role": m["role"], "content": str(m.get("content") or "")}
            for m in context
            if isinstance(m, dict) and m.get("role") in ("user", "assistant")
        ]
        prompt = turns.pop()["content"] if turns and turns[-1]["role"] == "user" else None
        try:
            response = await provider.text_chat(prompt=prompt, contexts=turns, system_prompt=system or None)
        except Exception as exc:  # noqa: BLE001 - the provider failed: Anmei's agent gateway retries/falls back
            logger.warning(f"[anmei] llm/infer failed: {type(exc).__name__}")
            return _json(502, {"error": "llm_error", "message": "the LLM provider failed"})
        usage = getattr(response, "usage", None)
        return _json(
            200,
            {
                "text": response.completion_text or "",
                "model": provider.get_model(),
                "usage": {
                    "prompt_tokens": getattr(usage, "input", None),
                    "completion_tokens": getattr(usage, "output", None),
                    "total_tokens": getattr(usage, "total", None),
                },
            },
        )

    def _health_body(self) -> dict[str, Any]:
        platforms = getattr(self.context.platform_manager, "platform_insts", [])
        return {
            "status": "ok",
            "platform_connected": bool(platforms),
            "anmei_reachable": self.anmei_reachable,
            "blacklist_version": self.blacklist.version,
            "queued_reports": self.outbox.count(),
        }

    async def _health(self, request: web.Request) -> web.Response:
        return _json(200, self._health_body())
