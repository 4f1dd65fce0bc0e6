"""Bot webhook service time per message: the one-statement path against the general path, same run.

A returning customer writes into their open conversation (the case the one-statement path serves).
The same number of messages goes through `bot_message_receive` in one thread with the path on and
with it off (BOT_INGEST_FAST_PATH), alternating rounds so that load on the machine hits both alike.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/anmei_bench REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/bot_ingest_paths.py --messages 300 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import harness  # noqa: E402 - bench/ is on sys.path when a script runs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")
os.environ.setdefault("LOG_LEVEL", "WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300, help="messages per path per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    if not harness.django_on_postgres_with_redis("bot_ingest_paths"):
        return
    from django.core.management import call_command
    from django.test.utils import override_settings

    call_command("migrate", verbosity=0)
    from anmei.bots.services import bot_create, bot_message_receive
    from anmei.tenants.services import tenant_signup

    run_id = uuid.uuid4().hex[:8]
    tenant = tenant_signup(name="bench paths", slug=f"bench-paths-{run_id}", contact_email="")
    bot, _, _ = bot_create(tenant_id=tenant.id, name="bench", platform="wecom", callback_url="http://127.0.0.1:9")

    def body(i: int) -> dict:
        return {
            "platform": "wecom",
            "user_id": "bench-returning",
            "nickname": "压测用户",
            "type": "text",
            "content": f"你好，我想咨询一下玻尿酸的价格 #{i}",
            "message_id": f"{run_id}-{uuid.uuid4().hex[:12]}",
        }

    bot_message_receive(bot=bot, data=body(0))  # the customer and their open conversation exist now

    def per_message_ms(fast: bool) -> float:
        with override_settings(BOT_INGEST_FAST_PATH=fast):
            started = time.perf_counter()
            for i in range(args.messages):
                bot_message_receive(bot=bot, data=body(i))
            return (time.perf_counter() - started) * 1000 / args.messages

    per_message_ms(True), per_message_ms(False)  # warm-up: connections, statement caches
    fast, general = [], []
    for _ in range(args.rounds):
        fast.append(per_message_ms(True))
        general.append(per_message_ms(False))
    f, g = statistics.median(fast), statistics.median(general)
    print(f"returning customer's message, service time (1 thread, median of {args.rounds} rounds):")
    print(f"  general path (baseline):  {g:.2f} ms/message = {1000 / g:.0f}/s")
    print(f"  one-statement path:       {f:.2f} ms/message = {1000 / f:.0f}/s")
    print(f"  ratio general/one-statement: {g / f:.2f}x")


if __name__ == "__main__":
    main()
