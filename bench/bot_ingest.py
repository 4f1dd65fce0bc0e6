"""IM bot gateway under load: inbound webhook throughput/p95, blacklist full pull and push fan-out.

It starts its own stack against DATABASE_URL / REDIS_URL (use a scratch database; it is migrated):
the web tier as deployed (``--server gunicorn``: docker-compose's `web`, threaded WSGI workers;
``--server uvicorn``/``daphne``: the ASGI entry point, HTTP through a2wsgi, as `make up` serves it),
``--web-workers`` processes, and a Celery worker (thread pool), plus the fake bot server of
tests/fakes/ that verifies every signature. Load comes from bench/harness.py's asyncio client.

1. Inbound: ``POST /api/v1/bot/messages`` from N concurrent bot connections (keep-alive), each
   message a new ``message_id`` from one of 200 IM users (new users are created on first sight and
   fire registration automation; nobody is online, so each message also queues an auto-reply).
   Baseline in the same run: ``GET /api/v1/bot/config`` (bot auth + two reads), the floor of any
   bot request on this stack.
2. Blacklist: a 10,000-entry list, 20 bots. Full pull size/time (``GET /api/v1/bot/blacklist``);
   then single-entry changes, timing change committed → all 20 bots acknowledged (2xx). Baseline
   in the same run: the same change with 1 bot.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/anmei_bench REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/bot_ingest.py --concurrency 1,8,16,32 --requests 1000
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import harness  # noqa: E402 - bench/ is on sys.path when a script runs
from cryptography.fernet import Fernet  # noqa: E402
from harness import free_port, http_load, pct, wait_port  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")
# The fake servers live on 127.0.0.1 and tenant URLs are SSRF-guarded (anmei.common.outbound).
os.environ.setdefault("OUTBOUND_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
# The web/worker children run as deployed (DEBUG off, so they need their own key); this process
# encrypts the bots' signing secrets with the same one.
os.environ.setdefault("FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode())
PY = sys.executable


def message_body(i: int, run_id: str) -> dict:
    return {
        "platform": "wecom",
        "user_id": f"bench-user-{i % 200}",
        "nickname": "压测用户",
        "type": "text",
        "content": f"你好，我想咨询一下玻尿酸的价格 #{i}",
        "message_id": f"{run_id}-{i}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", default="1,8,16,32")
    parser.add_argument("--requests", type=int, default=1500, help="inbound requests per concurrency level")
    parser.add_argument(
        "--web-workers",
        type=int,
        default=2,
        help="web processes (docker-compose's WEB_PROCESSES; one per core)",
    )
    parser.add_argument("--server", choices=["gunicorn", "uvicorn", "daphne"], default="gunicorn")
    parser.add_argument(
        "--keep-alive",
        type=int,
        default=0,
        help="gunicorn keep-alive seconds; 0 (as behind docker-compose's nginx, which opens a connection "
        "per request upstream) lets every request go to whichever process is free",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        help="the stack's LOG_LEVEL (INFO, as deployed: an access line and an event per message)",
    )
    parser.add_argument("--celery-concurrency", type=int, default=8)
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--bots", type=int, default=20)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--inbound-only", action="store_true", help="stop after the inbound figures")
    args = parser.parse_args()

    if not harness.django_on_postgres_with_redis("bot_ingest"):
        return
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    import requests
    from django.conf import settings

    from anmei.blacklist.services import blacklist_batch_add, blacklist_entry_add
    from anmei.bots.services import bot_create
    from anmei.common.redis import get_redis
    from anmei.tenants.models import Tenant
    from tests.fakes.fake_bot import FakeBotServer

    env = {
        **os.environ,
        "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "0"),
        "LOG_LEVEL": args.log_level,
        # Production mode, as deployed: DEBUG would record every SQL query. The children share this
        # process's secrets, which encrypt the bots' signing secrets created below.
        "DEBUG": "false",
        "SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEY": os.environ["FIELD_ENCRYPTION_KEY"],
        "FLOWER_BASIC_AUTH": "bench:bench",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    port = free_port()
    log_path = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / f"bot_ingest_worker_{port}.log"
    print(f"worker log: {log_path}")
    if args.server == "gunicorn":
        web = [
            str(Path(PY).parent / "gunicorn"),
            "anmei.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.web_workers),
            "--worker-class",
            "gthread",
            "--threads",
            "8",
            "--keep-alive",
            str(args.keep_alive),
            "--log-level",
            "warning",
        ]
    elif args.server == "uvicorn":
        web = [
            str(Path(PY).parent / "uvicorn"),
            "anmei.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(args.web_workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
    else:  # daphne: one process, as `make up` runs it
        web = [PY, "-m", "daphne", "-v", "0", "-b", "127.0.0.1", "-p", str(port), "anmei.asgi:application"]
    procs = [subprocess.Popen(web, cwd=ROOT, env=env)]
    fake = FakeBotServer().start()
    try:
        wait_port(port)
        base = f"http://127.0.0.1:{port}/api/v1"
        slug = f"bench-{uuid.uuid4().hex[:6]}"
        tenant = Tenant.objects.create(name=slug, slug=slug, contact_email="b@bench.test", status="approved")
        bot, token, secret = bot_create(tenant_id=tenant.id, name="ingest", platform="wecom", callback_url=fake.url)
        fake.register(bot.id, secret)
        for _ in range(2):  # warm up every process (imports, the pool's connections)
            http_load(port, "/api/v1/bot/config", token=token, concurrency=8, total=400)

        print(f"== inbound webhook ({args.server}, {args.web_workers} processes, {args.requests} requests per level)")
        print(
            f"{'conc':>5} {'baseline rps':>13} {'base p95 ms':>12} {'ingest rps':>11} {'p50 ms':>8} "
            f"{'p95 ms':>8} {'errors':>7} {'ratio':>6}"
        )
        for concurrency in [int(c) for c in args.concurrency.split(",")]:
            baseline = http_load(port, "/api/v1/bot/config", token=token, concurrency=concurrency, total=args.requests)
            run_id = uuid.uuid4().hex[:8]
            ingest = http_load(
                port,
                "/api/v1/bot/messages",
                token=token,
                concurrency=concurrency,
                total=args.requests,
                body=lambda i, run_id=run_id: message_body(i, run_id),
                expect=202,
            )
            print(
                f"{concurrency:>5} {baseline['rps']:>13.0f} {baseline['p95']:>12.1f} {ingest['rps']:>11.0f} "
                f"{ingest['p50']:>8.1f} {ingest['p95']:>8.1f} {ingest['errors']:>7} "
                f"{ingest['rps'] / baseline['rps']:>6.2f}"
            )

        # The same ingest without HTTP/ASGI: the service's own cost per message (one thread).
        from anmei.bots.services import bot_message_receive

        n = 300
        started = time.perf_counter()
        for i in range(n):
            data = message_body(i, "inproc-" + uuid.uuid4().hex[:6])
            bot_message_receive(bot=bot, data=data)
        per_message = (time.perf_counter() - started) * 1000 / n
        print(f"in-process ingest (service only, 1 thread): {per_message:.1f} ms/message = {1000 / per_message:.0f}/s")
        if args.inbound_only:
            return

        # The web tier is measured alone (2 cores); now drop the queued auto-replies/automation of the
        # bench customers and start the worker for the push fan-out.
        from celery_config import app as celery_app

        celery_app.control.purge()
        worker = subprocess.Popen(
            [
                PY,
                "-m",
                "celery",
                "-A",
                "celery_config",
                "worker",
                "-Q",
                "default",
                "--pool",
                "threads",
                "--concurrency",
                str(args.celery_concurrency),
                "-l",
                "WARNING",
                "-n",
                f"bench-{port}@%h",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(log_path, "w"),  # noqa: SIM115 - closed with the process
        )
        procs.append(worker)
        time.sleep(3)
        print(f"\n== blacklist: {args.entries} entries, {args.bots} bots")
        started = time.perf_counter()
        for offset in range(0, args.entries, 1000):
            blacklist_batch_add(
                tenant_id=tenant.id,
                actor=None,
                entries=[
                    {"platform": "wecom", "user_id": f"blocked-{n}", "reason": "bench"}
                    for n in range(offset, min(offset + 1000, args.entries))
                ],
            )
        print(f"loaded the list in {time.perf_counter() - started:.1f} s (batches of 1000)")
        bots = []
        for n in range(args.bots):
            b, _, s = bot_create(tenant_id=tenant.id, name=f"fan-{n}", platform="wecom", callback_url=fake.url)
            fake.register(b.id, s)
            bots.append(b)
        pulls = []
        size = 0
        for _ in range(5):
            t0 = time.perf_counter()
            response = requests.get(f"{base}/bot/blacklist", headers={"Authorization": f"Bearer {token}"}, timeout=60)
            pulls.append((time.perf_counter() - t0) * 1000)
            size = len(response.content)
            assert len(response.json()["entries"]) == args.entries
        print(f"full pull: {size / 1024:.0f} KiB, median {statistics.median(pulls):.0f} ms, max {max(pulls):.0f} ms")

        def fan_out(tenant_id: int, bot_ids: list[int], label: str) -> list[float]:
            latencies = []
            for n in range(args.changes):
                t0 = time.monotonic()
                _, version = blacklist_entry_add(
                    tenant_id=tenant_id, actor=None, platform="qq", user_id=f"{label}-{n}-{uuid.uuid4().hex[:4]}"
                )

                def acked(received, version=version):
                    got = {
                        r.bot_id
                        for r in received
                        if r.answered == 200 and (r.body or {}).get("version") == version and r.bot_id in bot_ids
                    }
                    return len(got) == len(bot_ids)

                if not fake.wait_for(acked, timeout=30):
                    raise SystemExit(f"version {version} did not reach every bot")
                latencies.append((time.monotonic() - t0) * 1000)
            return latencies

        solo_slug = f"bench-solo-{uuid.uuid4().hex[:6]}"
        solo = Tenant.objects.create(name=solo_slug, slug=solo_slug, contact_email="s@bench.test", status="approved")
        solo_bot, _, solo_secret = bot_create(tenant_id=solo.id, name="solo", platform="wecom", callback_url=fake.url)
        fake.register(solo_bot.id, solo_secret)
        one = fan_out(solo.id, [solo_bot.id], "solo")
        many = fan_out(tenant.id, [b.id for b in bots], "fan")
        print(f"push change → 1 bot acked:   p50 {pct(one, 0.5):.0f} ms, p95 {pct(one, 0.95):.0f} ms (baseline)")
        print(
            f"push change → {args.bots} bots acked: p50 {pct(many, 0.5):.0f} ms, p95 {pct(many, 0.95):.0f} ms, "
            f"ratio p95 {pct(many, 0.95) / pct(one, 0.95):.2f}"
        )
        bad = [r for r in fake.received if not r.signature_ok]
        print(f"signatures verified: {len(fake.received) - len(bad)} ok, {len(bad)} bad")
    finally:
        fake.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        get_redis().delete("default")  # queued auto-replies/automation of the bench customers


if __name__ == "__main__":
    main()
