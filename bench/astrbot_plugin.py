"""The AstrBot plugin: forwarding overhead, blacklist check, outbox drain — each with a same-run baseline.

1. Overhead per forwarded message: a real AstrBot (tests/astrbot/build_env.sh venv, loopback)
   driven through its webchat Open API (`POST /api/v1/chat`, non-streaming), N messages one at a
   time. With the plugin: the message is forwarded to Anmei's `POST /api/v1/bot/messages` (a
   stand-in answering 202 on 127.0.0.1, so Anmei's own ingest time is not counted) and the event is
   stopped. Baseline: the same AstrBot without the plugin answering the same message with its own
   LLM provider (a fake OpenAI-compatible server answering at once). Median latency of each, ratio.
2. Blacklist check per message (in memory, 10,000 entries) against a plain dict lookup.
3. Outbox drain after an outage: 1,000 queued forwards sent to the 202 stand-in over HTTP (an async
   client with keep-alive, httpx2 here: the plugin's aiohttp lives in AstrBot's venv), items per
   second; baseline: the same 1,000 POSTs sent without the outbox. The stand-in is http.server
   (tens of ms per keep-alive request here), so the ratio, not the rate, is the figure.

    .venv/bin/python bench/astrbot_plugin.py --messages 30
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from astrbot_plugin_anmei.anmei_core import Blacklist, Outbox, Store, drain  # noqa: E402
from tests.fakes._http import FakeServer  # noqa: E402
from tests.fakes.fake_openai import FakeOpenAI  # noqa: E402


def _anmei_stand_in() -> FakeServer:
    counter = {"n": 0}

    def handle(method, path, headers, body):
        counter["n"] += 1
        return 202, {"conversation_id": 1, "message_id": counter["n"], "duplicate": False, "blocked": False}

    return FakeServer(handle).start()


def bench_forwarding(messages: int) -> tuple[float, float]:
    from tests.fixtures_astrbot import PLUGIN_NAME, AstrBot, astrbot_venv

    venv = astrbot_venv()
    if venv is None:
        raise SystemExit("AstrBot venv missing: run tests/astrbot/build_env.sh")
    anmei, llm = _anmei_stand_in(), FakeOpenAI().start()
    llm.default_reply = "您好，请问有什么可以帮您？"
    root = Path(tempfile.mkdtemp(prefix="astrbot-bench-"))
    bot = AstrBot(
        venv,
        root,
        plugin_config={"anmei_base_url": anmei.url, "bot_token": "bot_bench", "bot_secret": "bsec_bench"},
        llm_base_url=llm.url,
    )
    try:
        bot.first_boot()

        def timed(prefix: str) -> list[float]:
            bot.chat("warm-up", username=f"{prefix}-warm")
            out = []
            for i in range(messages):
                start = time.perf_counter()
                bot.chat(f"想了解一下玻尿酸 {i}", username=f"{prefix}-{i % 5}")
                out.append(time.perf_counter() - start)
            return out

        with_plugin = statistics.median(timed("p"))
        bot.stop()
        shutil.rmtree(bot.data / "plugins" / PLUGIN_NAME)
        bot.start(wait_plugin=False)
        alone = statistics.median(timed("a"))
        return with_plugin, alone
    finally:
        bot.stop()
        anmei.stop()
        llm.stop()
        shutil.rmtree(root, ignore_errors=True)


def bench_blacklist(n: int = 200_000) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        blacklist = Blacklist(Store(f"{tmp}/b.sqlite3"))
        blacklist.replace(1, [{"platform": "wecom", "user_id": f"u{i}"} for i in range(10_000)])
        plain = {("wecom", f"u{i}") for i in range(10_000)}
        ids = [f"u{i * 7 % 20_000}" for i in range(n)]
        start = time.perf_counter()
        for user_id in ids:
            blacklist.is_blocked("wecom", user_id)
        check = (time.perf_counter() - start) / n
        start = time.perf_counter()
        for user_id in ids:
            _ = ("wecom", user_id) in plain
        base = (time.perf_counter() - start) / n
    return check, base


def bench_outbox(items: int = 1000) -> tuple[float, float]:
    import httpx2

    anmei = _anmei_stand_in()
    payload = {"platform": "wecom", "user_id": "u1", "type": "text", "content": "你好", "message_id": ""}

    async def run() -> tuple[float, float]:
        async with httpx2.AsyncClient() as http:

            async def send(item):
                response = await http.post(anmei.url + "/api/v1/bot/messages", json=item.payload)
                return response.status_code

            with tempfile.TemporaryDirectory() as tmp:
                outbox = Outbox(Store(f"{tmp}/o.sqlite3"))
                for i in range(items):
                    outbox.put("message", {**payload, "message_id": f"m{i}"})
                start = time.perf_counter()
                sent, emptied = await drain(outbox, send)
                drained = time.perf_counter() - start
                assert sent == items and emptied
            start = time.perf_counter()
            for i in range(items):
                await http.post(anmei.url + "/api/v1/bot/messages", json={**payload, "message_id": f"b{i}"})
            direct = time.perf_counter() - start
        return items / drained, items / direct

    try:
        return asyncio.run(run())
    finally:
        anmei.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=30)
    parser.add_argument("--skip-astrbot", action="store_true", help="only the in-process parts")
    args = parser.parse_args()
    check, base = bench_blacklist()
    print(f"blacklist check: {check * 1e9:.0f} ns/message vs dict lookup {base * 1e9:.0f} ns (×{check / base:.2f})")
    drained, direct = bench_outbox()
    print(f"outbox drain (1,000 queued): {drained:.0f}/s vs direct POSTs {direct:.0f}/s (×{drained / direct:.2f})")
    if not args.skip_astrbot:
        with_plugin, alone = bench_forwarding(args.messages)
        print(
            f"webchat message, median of {args.messages}: forwarded by the plugin {with_plugin * 1000:.1f} ms"
            f" vs AstrBot answering alone {alone * 1000:.1f} ms (×{with_plugin / alone:.2f})"
        )


if __name__ == "__main__":
    main()
