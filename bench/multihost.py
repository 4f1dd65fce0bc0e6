"""Registration and bot-webhook rates with one vs two app hosts (network namespaces, tests/netns_hosts.py).

Host `db` runs private PostgreSQL and Redis; hosts `a` and `b` each run web (daphne, anmei/serve.py).
The client spreads keep-alive connections over the hosts in use (round robin). Baseline: one host, in
the same run. No worker runs: the figures are the web tier's (the jobs the requests write wait).
Needs root (ip netns).

    .venv/bin/python bench/multihost.py --registrations 400 --messages 2000 --concurrency 16
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.netns_hosts import Cluster  # noqa: E402


async def _load(urls: list[str], path: str, bodies, *, token: str, concurrency: int, expect: int) -> dict:
    """POST every body over `concurrency` keep-alive connections spread over `urls`; rate and errors."""
    pending = iter(bodies)
    done = errors = 0
    statuses: set[int] = set()

    async def connection(url: str) -> None:
        nonlocal done, errors
        host, port = urlsplit(url).hostname, urlsplit(url).port
        reader, writer = await asyncio.open_connection(host, port)
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        while (body := next(pending, None)) is not None:
            data = json.dumps(body).encode()
            writer.write(
                (
                    f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{auth}Content-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n"
                ).encode()
                + data
            )
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            done += 1
            if status != expect:
                errors += 1
                statuses.add(status)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection(urls[i % len(urls)]) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"rps": done / elapsed, "errors": errors, "count": done, "unexpected": sorted(statuses)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=400)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    reason = Cluster.unavailable()
    if reason:
        sys.exit(f"bench/multihost.py: {reason}")
    cluster = Cluster(("a", "b"))
    try:
        cluster.start_network()
        cluster.start_data_host()
        cluster.manage("a", "migrate", "--noinput")
        token = (
            cluster.manage(
                "a",
                "shell",
                "-c",
                "from anmei.tenants.models import Tenant; from anmei.bots.services.instances import bot_create\n"
                "t = Tenant.objects.create(name='Bench', slug='bench', contact_email='b@b.test', status='approved')\n"
                "print(bot_create(tenant_id=t.id, name='b', platform='wecom', callback_url='http://bot.invalid')[1])",
            )
            .strip()
            .split()[-1]
        )
        urls = [cluster.start_web("a"), cluster.start_web("b")]
        run = uuid.uuid4().hex[:8]
        results = {}
        # Warm both hosts first (imports, connection pools, the first users), so order does not bias.
        warm = [{"tenant": "bench", "username": f"w{run}{i}", "password": "correct-horse-battery"} for i in range(20)]
        asyncio.run(_load(urls, "/api/v1/auth/register", warm, token="", concurrency=4, expect=201))
        for hosts in (1, 2):
            in_use = urls[:hosts]
            registrations = [
                {"tenant": "bench", "username": f"r{run}{hosts}x{i}", "password": "correct-horse-battery"}
                for i in range(args.registrations)
            ]
            messages = [
                {
                    "platform": "wecom",
                    "user_id": f"u{i % 200}",
                    "type": "text",
                    "content": f"价格多少 #{i}",
                    "message_id": f"{run}-{hosts}-{i}",
                }
                for i in range(args.messages)
            ]
            results[hosts] = {
                "registration": asyncio.run(
                    _load(
                        in_use,
                        "/api/v1/auth/register",
                        registrations,
                        token="",
                        concurrency=args.concurrency,
                        expect=201,
                    )
                ),
                "webhook": asyncio.run(
                    _load(
                        in_use, "/api/v1/bot/messages", messages, token=token, concurrency=args.concurrency, expect=202
                    )
                ),
            }
        for kind in ("registration", "webhook"):
            one, two = results[1][kind], results[2][kind]
            print(
                f"{kind:<12} one host {one['rps']:7.1f}/s ({one['errors']} errors {one['unexpected']})  "
                f"two hosts {two['rps']:7.1f}/s ({two['errors']} errors)  ratio {two['rps'] / one['rps']:.2f}"
            )
    finally:
        cluster.close()


if __name__ == "__main__":
    main()
