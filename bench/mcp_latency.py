"""MCP sidecar latency: N concurrent SDK clients calling get_user_profile over streamable HTTP.

Two phases: closed loop (each client calls again as soon as it has an answer: saturation
throughput, and latency = clients / throughput by Little's law) and paced (each client makes
`--rate` calls/s, like agents that think between tool calls). Prints calls/s and p50/p95/p99
latency for each, and as a baseline the same work done in-process in the
same run (the access check + profile ORM look-up the sidecar performs per call), with the ratio.
Target: p99 <= 50 ms at 20 concurrent clients on a 2-core machine.

    .venv/bin/python bench/mcp_latency.py [--clients 20] [--seconds 10] [--client-procs 2] [--rate 5]

Runs against PostgreSQL: DATABASE_URL, default postgres://postgres@127.0.0.1:5432/anmei_bench
(created and migrated if missing). The clients are spread over `--client-procs` processes so
that the load generator's own CPU does not dominate the latencies on a small machine.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from pathlib import Path

import psutil
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness import pct  # noqa: E402 - bench/ is on sys.path when a script runs

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/anmei_bench"


def ensure_database(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url.replace("postgres://", "postgresql://"), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def setup_data() -> tuple[int, str]:
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from anmei.accounts.models import User
    from anmei.accounts.services import user_create
    from anmei.mcp_admin.models import MCPToolGroup
    from anmei.mcp_admin.services import mcp_group_create, mcp_group_key_view
    from anmei.tenants.models import Tenant

    tenant, _ = Tenant.objects.get_or_create(
        slug="bench-mcp", defaults={"name": "Bench", "contact_email": "b@bench.test", "status": "approved"}
    )
    user = User.objects.filter(tenant=tenant, username="bench-customer").first() or user_create(
        tenant=tenant, username="bench-customer", password=None, nickname="Bench"
    )
    group = MCPToolGroup.objects.filter(tenant=tenant, name="bench").first()
    key = mcp_group_key_view(group=group, actor=None) if group else mcp_group_create(tenant=tenant, name="bench")[1]
    return user.pk, key


def client_proc(url: str, key: str, user_id: int, clients: int, seconds: float, rate: float, out: mp.Queue) -> None:
    """Run `clients` sessions in one process; closed loop when rate == 0, else `rate` calls/s each.

    Paced latencies are measured from each call's *scheduled* time, so a slow answer that delays
    the next call counts against the next call too (no coordinated omission).
    """
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    latencies: list[float] = []
    errors = 0

    async def one_client(start_at: float) -> None:
        nonlocal errors
        headers = {"Authorization": f"Bearer {key}", "X-Caller-App-Id": "bench"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with streamable_http_client(url, http_client=http) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    await session.call_tool("get_user_profile", {"user_id": user_id})  # warm-up
                    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
                    end = start_at + seconds
                    interval = 1.0 / rate if rate else 0.0
                    scheduled = start_at + random.random() * interval
                    while scheduled < end:
                        if interval:
                            await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
                        else:
                            scheduled = time.monotonic()
                        result = await session.call_tool("get_user_profile", {"user_id": user_id})
                        latencies.append((time.monotonic() - scheduled) * 1000)
                        if result.is_error:
                            errors += 1
                        scheduled += interval

    async def main() -> None:
        gc.collect()
        gc.freeze()  # the load generator's own GC pauses would show up as server latency
        gc.set_threshold(50_000, 20, 20)
        start_at = time.monotonic() + 2.0
        await asyncio.gather(*(one_client(start_at) for _ in range(clients)))

    asyncio.run(main())
    out.put((latencies, errors))


def in_process_baseline(key: str, user_id: int, seconds: float) -> list[float]:
    from anmei.mcp_admin.selectors.access import mcp_call_authorize
    from anmei.mcp_admin.selectors.tool_data import customer_profile

    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        grant = mcp_call_authorize(key=key, tool_name="get_user_profile")
        customer_profile(tenant_id=grant.tenant_id, user_id=user_id)
        latencies.append((time.perf_counter() - t0) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument(
        "--rate", type=float, default=5.0, help="calls/s per client in the paced phase (0: closed loop only)"
    )
    args = parser.parse_args()

    os.environ.setdefault("DATABASE_URL", DEFAULT_DB)
    if not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
        print("bench/mcp_latency.py measures against PostgreSQL: set DATABASE_URL=postgres://… (skipped)")
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The sidecar runs as deployed (DEBUG off, so its own key); this process shares the secrets.
    os.environ.setdefault("FIELD_ENCRYPTION_KEY", Fernet.generate_key().decode())
    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    from django.db import connection

    user_id, key = setup_data()

    # Baseline first, in this process: the same per-call database work without MCP/HTTP.
    in_process_baseline(key, user_id, 1.0)  # warm-up
    base = in_process_baseline(key, user_id, min(args.seconds, 5.0))
    connection.close()

    sys.path.insert(0, str(ROOT / "tests"))
    from django.conf import settings

    from tests.fixtures_mcp import start_sidecar  # the same launcher the tests use

    sidecar = start_sidecar(
        DATABASE_URL=os.environ["DATABASE_URL"],
        MCP_LOG_FLUSH_SECONDS="0.5",
        DEBUG="false",
        SECRET_KEY=settings.SECRET_KEY,
        ALLOWED_HOSTS="127.0.0.1,localhost",
    )
    phases = [("closed loop (back-to-back calls)", 0.0)] + (
        [(f"paced, {args.rate:g} calls/s per client", args.rate)] if args.rate else []
    )
    results = []
    try:
        server = psutil.Process(sidecar.process.pid)
        for label, rate in phases:
            before = server.cpu_times()
            latencies, errors = run_clients(sidecar.url, key, user_id, args, rate)
            after = server.cpu_times()
            # Includes the ~2 s warm-up (session setup, one call per client): a slight overestimate.
            cpu_ms = (after.user + after.system - before.user - before.system) * 1000
            results.append((label, rate, latencies, errors, cpu_ms))
    finally:
        sidecar.stop()

    figures: dict = {
        "clients": args.clients,
        "seconds": args.seconds,
        "baseline_calls": len(base),
        "baseline_p50_ms": round(pct(base, 0.50), 3),
        "baseline_p99_ms": round(pct(base, 0.99), 3),
        "baseline_mean_ms": round(statistics.fmean(base), 3),
    }
    print(
        f"MCP get_user_profile over streamable HTTP, {args.clients} concurrent SDK clients, "
        f"{args.seconds:g} s, PostgreSQL"
    )
    print(
        f"baseline: same access check + profile look-up in-process, sequential ({len(base)} calls): "
        f"p50 {figures['baseline_p50_ms']} ms  p99 {figures['baseline_p99_ms']} ms"
    )
    for label, rate, latencies, errors, cpu_ms in results:
        key_ = "closed" if not rate else "paced"
        phase = {
            "calls": len(latencies),
            "errors": errors,
            "calls_per_s": round(len(latencies) / args.seconds, 1),
            "p50_ms": round(pct(latencies, 0.50), 2),
            "p95_ms": round(pct(latencies, 0.95), 2),
            "p99_ms": round(pct(latencies, 0.99), 2),
            "sidecar_cpu_ms_per_call": round(cpu_ms / max(len(latencies), 1), 2),
        }
        phase["ratio_p50_vs_baseline"] = round(phase["p50_ms"] / figures["baseline_p50_ms"], 1)
        phase["ratio_p99_vs_baseline"] = round(phase["p99_ms"] / figures["baseline_p99_ms"], 1)
        phase["target_p99_le_50ms"] = "met" if phase["p99_ms"] <= 50 else "NOT met"
        figures[key_] = phase
        print(
            f"{label}: {phase['calls_per_s']} calls/s  p50 {phase['p50_ms']} ms  p95 {phase['p95_ms']} ms  "
            f"p99 {phase['p99_ms']} ms  errors {errors}  sidecar CPU {phase['sidecar_cpu_ms_per_call']} ms/call  "
            f"| ratio vs baseline p50 x{phase['ratio_p50_vs_baseline']} "
            f"p99 x{phase['ratio_p99_vs_baseline']}  | target p99 <= 50 ms: {phase['target_p99_le_50ms']}"
        )
    load = os.getloadavg()
    figures["cpus"] = os.cpu_count()
    figures["loadavg_1m_at_end"] = round(load[0], 2)
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (other work competes)"
    )
    print(json.dumps(figures))


def run_clients(url: str, key: str, user_id: int, args, rate: float) -> tuple[list[float], int]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    n_procs = max(1, args.client_procs)
    per_proc = [args.clients // n_procs + (i < args.clients % n_procs) for i in range(n_procs)]
    procs = [
        ctx.Process(target=client_proc, args=(url, key, user_id, n, args.seconds, rate, out)) for n in per_proc if n
    ]
    for p in procs:
        p.start()
    latencies: list[float] = []
    errors = 0
    for _ in procs:
        lat, err = out.get(timeout=args.seconds + 120)
        latencies += lat
        errors += err
    for p in procs:
        p.join()
    return latencies, errors


if __name__ == "__main__":
    main()
