"""Registration automation under load: real HTTP registrations, a WebSocket per customer, a real stack.

It starts its own stack on free ports against DATABASE_URL / REDIS_URL (use a scratch database):
daphne (web + WebSockets), a Celery worker (the launcher's command), the MCP sidecar, and a fake
Dify app (tests/fakes/fake_dify.py, configurable latency and failure rate) whose agent reads the
profile from the sidecar. For each rate it registers customers at that rate over HTTP, opens each
customer's /ws/customer/ socket right after the 201, and times registration → welcome received.

Baselines measured in the same run: password hashing alone (the first of PASSWORD_HASHERS) (what a registration must pay
anyway), and a no-op Celery chain of the same length (6 links: the registration hand-off and the five steps)
through the same worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/anmei_bench REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/registration.py --rates 100,150,200,300 --duration 30 --failure-duration 120
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
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
from harness import free_port, pct, wait_port  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")
PY = sys.executable


# --- a minimal RFC 6455 client (no WebSocket library is installed; daphne's autobahn is server-side here)
class WSClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str) -> WSClient:
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://{host}:{port}\r\n\r\n"
            ).encode()
        )
        status = await reader.readline()
        if b" 101 " not in status:
            raise ConnectionError(f"handshake refused: {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return cls(reader, writer)

    async def recv_json(self) -> dict:
        while True:
            head = await self.reader.readexactly(2)
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await self.reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(length)
            if opcode == 0x1:
                return json.loads(payload)
            if opcode == 0x8:
                raise ConnectionError("closed by server")
            if opcode == 0x9:
                self._send(0xA, payload)

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        n = len(payload)
        header += bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big")
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def close(self) -> None:
        try:
            self._send(0x8, b"\x03\xe8")
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        self.writer.close()


class Stack:
    """web + worker + MCP sidecar subprocesses and a fake Dify in this process."""

    def __init__(self, args) -> None:
        self.args = args
        self.procs: list[subprocess.Popen] = []
        self.web_port, self.mcp_port = free_port(), free_port()

    def start(self) -> None:
        env = dict(
            os.environ,
            PYTHONPATH=str(ROOT),
            THROTTLE_AUTH_RATE="1000000/min",
            OUTBOUND_ALLOWED_PRIVATE_HOSTS="127.0.0.1",  # the fake Dify (tenant URLs are SSRF-guarded)
            LOG_LEVEL="WARNING",
            MCP_URL=f"http://127.0.0.1:{self.mcp_port}/mcp",
            DEBUG="true",
        )
        subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT, "env": env}
        self.procs.append(subprocess.Popen([PY, "-m", "mcp_server", "--port", str(self.mcp_port)], **quiet))
        self.procs.append(
            subprocess.Popen(
                [PY, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.web_port), "anmei.asgi:application"], **quiet
            )
        )
        # The launcher's worker command; DB_CONN_MAX_AGE is the one knob the bench lets you vary.
        worker = [PY, "-m", "celery", "-A", "celery_config", "worker", "-Q", "default", "-l", "WARNING"]
        worker += ["--concurrency", str(self.args.worker_concurrency), "-n", f"bench-{uuid.uuid4().hex[:6]}@%h"]
        worker_env = dict(env, DB_CONN_MAX_AGE=str(self.args.worker_conn_max_age))
        self.procs.append(subprocess.Popen(worker, **{**quiet, "env": worker_env}))
        wait_port(self.mcp_port)
        wait_port(self.web_port)
        os.environ["MCP_URL"] = env["MCP_URL"]
        import django

        django.setup()
        from celery_config import app

        deadline = time.monotonic() + 60
        while not app.control.ping(timeout=1) and time.monotonic() < deadline:
            pass

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()


def setup_tenant(stack: Stack, slug: str, dify_url: str):
    from anmei.accounts.models import User
    from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
    from anmei.automation.services import automation_settings_update
    from anmei.tenants.models import Tenant

    tenant, _ = Tenant.objects.get_or_create(
        slug=slug, defaults={"name": slug, "contact_email": f"ops@{slug}.test", "status": Tenant.Status.APPROVED}
    )
    if not User.objects.filter(tenant=tenant, role="consultant").exists():
        User.objects.create(tenant=tenant, username="consultant", role="consultant")
    agent_config_update(
        config=agent_config_get_or_create(tenant_id=tenant.id),
        provider="dify",
        base_url=dify_url,
        app_id="bench-dify",
        api_key="app-bench",
        timeout_seconds=8.0,
        enabled=True,
        breaker_threshold=1000,
    )  # measure the agent path itself, never skipped by the breaker
    automation_settings_update(tenant_id=tenant.id, enabled=True, notification_backend="stored")
    return tenant


def ticket_for(user_id: int) -> str:
    from anmei.accounts.models import User
    from anmei.accounts.services import ws_ticket_issue

    return ws_ticket_issue(user=User.objects.get(pk=user_id))


def stored_welcome_at(user_id: int) -> float | None:
    from anmei.conversations.models import Message

    message = Message.objects.filter(external_id=f"welcome:{user_id}").only("created_at").first()
    return message.created_at.timestamp() if message else None


async def one_customer(http, stack: Stack, slug: str, n: int, results: dict) -> None:
    from asgiref.sync import sync_to_async

    username = f"b{uuid.uuid4().hex[:10]}"
    started_wall, started = time.time(), time.perf_counter()
    try:
        response = await http.post(
            f"http://127.0.0.1:{stack.web_port}/api/v1/auth/register",
            json={"tenant": slug, "username": username, "password": "bench-password-123", "nickname": f"客户{n}"},
        )
    except Exception as exc:  # noqa: BLE001
        results["errors"].append(f"register: {type(exc).__name__}")
        return
    registered = time.perf_counter()
    results["register_ms"].append((registered - started) * 1000)
    if response.status_code != 201:
        results["errors"].append(f"register {response.status_code}")
        return
    user_id = response.json()["id"]
    ws = None
    try:
        ticket = await sync_to_async(ticket_for, thread_sensitive=False)(user_id)
        ws = await WSClient.connect("127.0.0.1", stack.web_port, f"/ws/customer/?ticket={ticket}")
        deadline = time.perf_counter() + results["timeout"]
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                raise TimeoutError
            event = await asyncio.wait_for(ws.recv_json(), remaining)
            if event.get("type") == "connection.ready":
                # The welcome may have been pushed before the socket was up: then it is stored.
                at = await sync_to_async(stored_welcome_at, thread_sensitive=False)(user_id)
                if at is not None:
                    results["welcome_ms"].append((at - started_wall) * 1000)
                    results["after_201_ms"].append((at - started_wall) * 1000 - results["register_ms"][-1])
                    results["stored"] += 1
                    return
            elif event.get("type") == "message.new" and event["message"]["payload"].get("kind") == "welcome":
                results["welcome_ms"].append((time.perf_counter() - started) * 1000)
                results["after_201_ms"].append((time.perf_counter() - registered) * 1000)
                return
    except (TimeoutError, ConnectionError, OSError) as exc:
        results["errors"].append(f"welcome: {type(exc).__name__}")
    finally:
        if ws is not None:
            await ws.close()
        results["user_ids"].append(user_id)


async def drive(stack: Stack, slug: str, rate_per_min: float, duration: float, timeout: float) -> dict:
    import httpx2

    results = {
        "register_ms": [],
        "welcome_ms": [],
        "after_201_ms": [],
        "errors": [],
        "stored": 0,
        "user_ids": [],
        "timeout": timeout,
    }
    interval = 60.0 / rate_per_min
    count = max(1, int(duration / interval))
    async with httpx2.AsyncClient(timeout=30) as http:
        tasks = []
        t0 = time.perf_counter()
        for n in range(count):
            delay = t0 + n * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one_customer(http, stack, slug, n, results)))
        await asyncio.gather(*tasks)
    results["count"] = count
    return results


def run_outcomes(user_ids: list[int], wait: float = 30) -> dict:
    from anmei.automation.models import AutomationRun

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if not AutomationRun.objects.filter(customer_id__in=user_ids, status="running").exists():
            break
        time.sleep(0.5)
    rows = list(AutomationRun.objects.filter(customer_id__in=user_ids).values_list("status", "welcome_source"))
    return {
        "runs": len(rows),
        "succeeded": sum(1 for s, _ in rows if s == "succeeded"),
        "template": sum(1 for _, w in rows if w == "template"),
    }


def baseline_hashing(samples: int = 10) -> float:
    """Median wall ms of one make_password with the first of PASSWORD_HASHERS (printed with its CPU ms)."""
    from django.contrib.auth.hashers import get_hasher, make_password

    times, cpu = [], []
    for _ in range(samples):
        started, started_cpu = time.perf_counter(), time.process_time()
        make_password("bench-password-123")
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    print(f"hasher: {get_hasher().algorithm} — CPU per hash p50 {statistics.median(cpu):.1f} ms (load-independent)")
    return statistics.median(times)


def baseline_noop_chain(samples: int = 20) -> list[float]:
    from celery import chain

    from anmei.common.redis import get_redis
    from workers.registration import noop

    times = []
    for _i in range(samples):
        marker = f"bench:noop:{uuid.uuid4().hex}"
        started = time.perf_counter()
        chain(*(noop.si(k) for k in range(5)), noop.si(5, marker)).apply_async()
        if get_redis().blpop(marker, timeout=30) is None:
            raise SystemExit("no-op chain did not finish in 30 s: is the worker up?")
        times.append((time.perf_counter() - started) * 1000)
    return times


def report(label: str, rate: float, results: dict, outcomes: dict, chain_p50: float, hash_ms: float) -> float:
    reg, wel = results["register_ms"], results["welcome_ms"]
    received = len(wel)
    print(f"\n== {label}: {rate:.0f} registrations/min, {results['count']} customers")
    print(
        f"registration API     p50 {pct(reg, 0.5):7.1f} ms  p95 {pct(reg, 0.95):7.1f} ms  p99 {pct(reg, 0.99):7.1f} ms"
        f"   (hashing alone p50 {hash_ms:.1f} ms → ratio {pct(reg, 0.5) / hash_ms:.2f})"
    )
    print(
        f"register → welcome   p50 {pct(wel, 0.5):7.1f} ms  p95 {pct(wel, 0.95):7.1f} ms  p99 {pct(wel, 0.99):7.1f} ms"
        f"   (no-op 6-link chain p50 {chain_p50:.1f} ms)"
    )
    after = results["after_201_ms"]
    print(
        f"201 → welcome        p50 {pct(after, 0.5):7.1f} ms  p95 {pct(after, 0.95):7.1f} ms"
        f"  p99 {pct(after, 0.99):7.1f} ms"
    )
    print(
        f"welcomes received    {received}/{results['count']} ({100 * received / results['count']:.1f}%),"
        f" {results['stored']} already stored when the socket opened; errors: {len(results['errors'])}"
        f"{' ' + str(sorted(set(results['errors']))[:3]) if results['errors'] else ''}"
    )
    if outcomes["runs"]:
        print(
            f"runs succeeded       {outcomes['succeeded']}/{outcomes['runs']} "
            f"({100 * outcomes['succeeded'] / outcomes['runs']:.2f}%), template fallbacks {outcomes['template']}"
        )
    return pct(wel, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--rates", default="100,150,200,300", help="registrations/min to try, in order (stops at the first miss)"
    )
    parser.add_argument("--duration", type=float, default=30, help="seconds per rate")
    parser.add_argument("--dify-latency", type=float, default=0.5)
    parser.add_argument(
        "--no-failure-run",
        dest="failure_run",
        action="store_false",
        help="skip the run with 20%% of agent calls failing (at the first rate)",
    )
    parser.add_argument("--failure-rate", type=float, default=0.2)
    parser.add_argument(
        "--failure-duration", type=float, default=0, help="seconds of the failure run (default: --duration)"
    )
    parser.add_argument("--worker-concurrency", type=int, default=int(os.environ.get("WORKER_CONCURRENCY", "4")))
    parser.add_argument("--welcome-timeout", type=float, default=20)
    parser.add_argument(
        "--worker-conn-max-age",
        type=int,
        default=0,
        help="DB_CONN_MAX_AGE for the worker (0, the project default, opens a PostgreSQL connection per task)",
    )
    args = parser.parse_args()

    if not harness.django_on_postgres_with_redis("registration"):
        return
    from django.db import connection

    print(f"registration: writes bench-* tenants into {connection.settings_dict['NAME']} (use a scratch database)")

    stack = Stack(args)
    stack.start()
    slug = f"bench-{uuid.uuid4().hex[:6]}"
    from anmei.mcp_admin.services import mcp_group_create
    from anmei.tenants.models import Tenant

    tenant = Tenant.objects.create(name=slug, slug=slug, contact_email="ops@bench.test", status="approved")
    _group, mcp_key = mcp_group_create(tenant=tenant, name="dify-agent", tool_names=["get_user_profile"])
    dify_port = free_port()
    dify_url = f"http://127.0.0.1:{dify_port}"
    # The fake Dify runs in its own process so that it does not share a GIL with the measuring client.
    stack.procs.append(
        subprocess.Popen(
            [
                PY,
                "-m",
                "tests.fakes.fake_dify",
                "--port",
                str(dify_port),
                "--app-key",
                "app-bench",
                "--mcp-url",
                os.environ["MCP_URL"],
                "--mcp-key",
                mcp_key,
                "--latency",
                str(args.dify_latency),
            ],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    wait_port(dify_port)

    def dify_control(**values):
        import requests

        response = requests.post(f"{dify_url}/_control", json=values, timeout=5)
        response.raise_for_status()
        return response.json()

    try:
        setup_tenant(stack, slug, dify_url)
        hash_ms = baseline_hashing()
        chain_times = baseline_noop_chain()
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        print(
            f"stack: daphne :{stack.web_port}, worker concurrency {args.worker_concurrency} "
            f"(DB_CONN_MAX_AGE {args.worker_conn_max_age}), MCP :{stack.mcp_port},"
            f" fake Dify latency {args.dify_latency * 1000:.0f} ms"
        )
        print(
            f"baseline: password hashing p50 {hash_ms:.1f} ms; no-op 6-link Celery chain p50 "
            f"{pct(chain_times, 0.5):.1f} ms p95 {pct(chain_times, 0.95):.1f} ms"
        )
        asyncio.run(drive(stack, slug, 120, 3, args.welcome_timeout))  # warm-up: connections, imports
        sustained = None
        for rate in [float(r) for r in args.rates.split(",")]:
            results = asyncio.run(drive(stack, slug, rate, args.duration, args.welcome_timeout))
            outcomes = run_outcomes(results["user_ids"])
            p95 = report("load", rate, results, outcomes, pct(chain_times, 0.5), hash_ms)
            ok = p95 <= 3000 and len(results["welcome_ms"]) == results["count"]
            if ok:
                sustained = rate
            else:
                break
        print(
            f"\nhighest sustained rate with welcome p95 ≤ 3 s and every welcome received: "
            f"{sustained if sustained else 'none of the tried rates'} registrations/min"
        )
        if args.failure_run:
            before = dify_control(failure_rate=args.failure_rate)
            rate = float(args.rates.split(",")[0])
            results = asyncio.run(
                drive(stack, slug, rate, args.failure_duration or args.duration, args.welcome_timeout)
            )
            outcomes = run_outcomes(results["user_ids"])
            after = dify_control()
            print(
                f"\nfake Dify answered 500 to {after['failed'] - before['failed']} of "
                f"{after['served'] - before['served']} calls in this phase"
            )
            report(
                f"{args.failure_rate:.0%} of agent calls failing",
                rate,
                results,
                outcomes,
                pct(chain_times, 0.5),
                hash_ms,
            )
        print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
