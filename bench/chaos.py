"""Chaos suite: faults injected mid-load, then an audit of the database. Exits 1 on any loss or duplicate.

    python bench/chaos.py [--registrations 40] [--messages 40] [--rate 4] [--wait 90] [--only kill_one,...]
    python bench/chaos.py --soak 1800 [--seed 0] ...   (experiments back to back, a random fault each)

It starts its own stack (`bench/chaos_stack.py`) — a throwaway PostgreSQL cluster (initdb under
/tmp, its own port: really restarted by `postgres_restart`; the machine's shared cluster is never
touched), its own redis-server on a free port (which it restarts), the web process, two Celery
workers (default, replies), one ASR worker, beat (the jobs sweep, the blacklist resync), the real
MCP sidecar, and in this process fake outside services: a push gateway that fails half the
notifications once (so countdown retries are pending when a fault hits), an IM bot, an ASR server
(each transcription takes seconds), an OpenAI-compatible model and a Dify app.

Experiments (`--only`), each on a fresh tenant, a fault injected part-way through the load:
- registrations + an IM burst (new customers writing to a bot nobody answers: auto-replies) with
  none (what the sweep re-sends here is its false-positive ratio), kill_one, kill_all,
  redis_restart(_aof), redis_restarts (five in a row: do the workers survive), postgres_outage
  (a proxy drops every connection), postgres_restart (pg_ctl restart), web_restart;
- mcp_outage[_openai|_dify]: the sidecar down for 20 s during --mcp-registrations registrations with
  nicknames, the built-in / OpenAI-compatible / Dify agent: personalised welcomes and their p95;
- asr_kill: voice messages, the ASR worker killed mid-transcription (each transcribed and answered once);
- ends_redis_restart: conversations ended by the consultant while Redis restarts (one summary each);
- blacklist_down: the bots' callback down past the push schedule for two changes, then back (each
  bot at the current version, every version received exactly once).
Audits are in `bench/chaos_audit.py`; sweep knobs are shortened so a run takes minutes (printed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable

from bench import chaos_audit, chaos_load  # noqa: E402
from bench.chaos_report import table  # noqa: E402
from bench.chaos_stack import PostgresProxy, PrivatePostgres, Stack, free_port, inject, rss_kib  # noqa: E402

KNOBS = {
    "JOBS_SWEEP_SECONDS": "1",
    "JOBS_RESEND_GRACE_SECONDS": "3",
    "JOBS_RESEND_HELD_GRACE_SECONDS": "10",  # a killed worker's countdown retries come back within the wait
    "AUTOMATION_STEP_LEASE_SECONDS": "20",
    "BOT_DELIVERY_LEASE_SECONDS": "20",
    "BOT_AUTO_REPLY_LEASE_SECONDS": "20",
    "BLACKLIST_PUSH_LEASE_SECONDS": "20",
    "BLACKLIST_EXPIRY_SWEEP_SECONDS": "2",  # the periodic resync of lagging bots
    "BLACKLIST_RESYNC_BACKOFF_SECONDS": "2",
    "BLACKLIST_RESYNC_MAX_BACKOFF_SECONDS": "4",
    "ASR_LEASE_SECONDS": "15",
    "ASR_RETRY_COUNTDOWNS": "1,2",
    "AI_SUMMARY_RETRY_COUNTDOWNS": "1,3",
    "AI_SUMMARY_LEASE_SECONDS": "20",
}
FAULTS = [
    "none",
    "kill_one",
    "kill_all",
    "redis_restart",
    "redis_restart_aof",
    "redis_restarts",
    "postgres_outage",
    "postgres_restart",
    "web_restart",
    "mcp_outage",
    "mcp_outage_openai",
    "mcp_outage_dify",
    "asr_kill",
    "ends_redis_restart",
    "blacklist_down",
]
ASR_SECONDS = 4.0  # each transcription of the fake ASR server: the kill lands mid-way


def environment(pg_port: int, redis_port: int, mcp_port: int, fakes: dict) -> tuple[dict, str]:
    database = f"anmei_chaos_{os.getpid()}"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_port}/{database}",
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "THROTTLE_AUTH_RATE": "1000000/min",
        "THROTTLE_SIGNUP_RATE": "1000000/min",
        "PASSWORD_HASHERS": "django.contrib.auth.hashers.MD5PasswordHasher",
        "MCP_URL": f"http://127.0.0.1:{mcp_port}/mcp",
        "MCP_PORT": str(mcp_port),
        "ASR_BACKEND": "openai-api",
        "ASR_MODEL": "sensevoice-small",
        "ASR_API_BASE_URL": fakes["asr"].url,
        "MEDIA_LOCAL_ROOT": tempfile.mkdtemp(prefix="anmei-chaos-media-"),
        "LOG_LEVEL": "WARNING",
        "DEBUG": "true",
        "DJANGO_SETTINGS_MODULE": "anmei.settings",
        "OUTBOUND_ALLOWED_PRIVATE_HOSTS": "127.0.0.1",  # the fake outside services
        **KNOBS,
    }
    return env, database


def agent_for(fault: str, tenant, fakes: dict, mcp_url: str) -> None:
    """The welcome's agent of an MCP experiment: built-in (default), OpenAI-compatible or Dify."""
    from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
    from anmei.mcp_admin.services import mcp_group_create

    config = agent_config_get_or_create(tenant_id=tenant.id)
    if fault == "mcp_outage_openai":
        agent_config_update(
            config=config, provider="openai", base_url=fakes["openai"].url + "/v1", model="fake-gpt", api_key="sk-test"
        )
    elif fault == "mcp_outage_dify":
        _group, key = mcp_group_create(tenant=tenant, name="dify", tool_names=["get_user_profile"])
        fakes["dify"].mcp_url, fakes["dify"].mcp_key = mcp_url, key
        agent_config_update(config=config, provider="dify", base_url=fakes["dify"].url, api_key="app-chaos")


def experiment(args, stack: Stack, fault: str, fakes: dict) -> dict:
    from anmei.accounts.services import auth_token_issue

    slug = f"chaos-{fault.replace('_', '-')}-{uuid.uuid4().hex[:4]}"
    bots = 3 if fault == "blacklist_down" else 1
    tenant, consultant, made = chaos_load.setup_tenant(
        slug, fakes["push"].url, fakes["bot"].url, fakes["bot"], bots=bots
    )
    bot_token = made[0][1]
    fakes["push"].fail_first = fakes["push"].attempts + args.registrations // 2  # half the notifications fail once
    fault_at: list[float] = []

    def on_fault() -> None:  # in a thread: the load goes on during the fault
        fault_at.append(time.monotonic())
        if fault not in ("none", "blacklist_down"):
            threading.Thread(target=inject, args=(stack, fault), daemon=True).start()

    port = stack.web_port
    if fault.startswith("mcp_outage"):
        agent_for(fault, tenant, fakes, stack.env["MCP_URL"])
        load = argparse.Namespace(**{**vars(args), "registrations": args.mcp_registrations, "messages": 0})
        driven = chaos_load.drive(load, port, slug, bot_token, on_fault, nicknames=True, im=False)
    elif fault == "asr_kill":
        fakes["asr"].delays = [ASR_SECONDS] * 200
        driven = chaos_load.drive_voice(args, port, bot_token, on_fault)
    elif fault == "ends_redis_restart":
        token = auth_token_issue(user=consultant)
        driven = chaos_load.drive_ends(args, port, slug, token, on_fault)
    elif fault == "blacklist_down":
        driven = chaos_load.drive_blacklist(args, made, fakes["bot"], tenant, on_fault)
    else:
        driven = chaos_load.drive(args, port, slug, bot_token, on_fault)
    deadline = time.monotonic() + args.wait
    time.sleep(3)  # a worker that a fault killed has exited by now
    alive = sum(worker.poll() is None for worker in stack.workers.values())

    def audited() -> dict:
        from django.db import connections

        connections.close_all()  # a restarted PostgreSQL: this process reconnects too
        try:
            result = chaos_audit.audit(tenant, consultant, driven, fakes["bot"])
            if fault == "asr_kill":
                result.update(chaos_audit.audit_voices(tenant, driven))
            elif fault == "ends_redis_restart":
                ends = chaos_audit.audit_ends(driven)
                result.update(summaries_missing=ends["summaries_missing"], stuck=result["stuck"] + ends["stuck"])
                result["messages"] += ends["messages"]
            elif fault == "blacklist_down":
                result.update(chaos_audit.audit_blacklist(tenant, driven, fakes["bot"]))
            return result
        except Exception as exc:  # noqa: BLE001 - the database still restarting: not settled yet
            return {"stuck": 1, "lost": 0, "dup": 0, "audit_error": type(exc).__name__}

    result = audited()
    while not chaos_audit.done(result) and time.monotonic() < deadline:
        stack.revive()
        time.sleep(2)
        result = audited()
    if not chaos_audit.done(result):
        result["open_jobs"] = chaos_audit.open_jobs(tenant)
    if fault.startswith("mcp_outage"):
        result.update(chaos_audit.audit_welcomes(driven))
    result.update(chaos_audit.resends(tenant))
    result["fault"] = fault
    result["workers_alive"] = f"{alive}/{len(stack.workers)}"
    result["recovered_s"] = round(time.monotonic() - fault_at[0], 1) if chaos_audit.done(result) and fault_at else None
    refused = driven["refused"]
    result["refused"] = sum(n for key, n in refused.items() if key.split()[1] in ("0", "503"))
    result["http_500"] = sum(n for key, n in refused.items() if key.split()[1] not in ("0", "503"))
    result["refused_by"] = refused
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=40, help="per experiment")
    parser.add_argument("--messages", type=int, default=40, help="IM messages per experiment")
    parser.add_argument("--mcp-registrations", type=int, default=60, help="registrations of an MCP outage experiment")
    parser.add_argument("--rate", type=float, default=4.0, help="requests per second")
    parser.add_argument("--wait", type=float, default=90.0, help="bounded wait for recovery, seconds")
    parser.add_argument("--only", default=",".join(FAULTS))
    parser.add_argument(
        "--soak", type=float, default=0, help="seconds: experiments back to back, a random fault of --only each"
    )
    parser.add_argument(
        "--fault-every", type=float, default=180, help="soak: a new experiment (and fault) every this many seconds"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of the soak's fault order")
    args = parser.parse_args()
    faults = [f for f in args.only.split(",") if f]
    chooser = random.Random(args.seed)
    soak_until = time.monotonic() + args.soak if args.soak else None

    from tests.fakes.fake_asr import FakeAsrServer
    from tests.fakes.fake_bot import FakeBotServer
    from tests.fakes.fake_dify import FakeDify
    from tests.fakes.fake_openai import FakeOpenAI
    from tests.fakes.fake_push import FakePush

    fakes = {"push": FakePush().start(), "bot": FakeBotServer().start(), "asr": FakeAsrServer().start()}
    fakes["openai"] = FakeOpenAI(api_key="sk-test").start()
    fakes["dify"] = FakeDify(app_key="app-chaos", mcp_url="", mcp_key="").start()
    pg = PrivatePostgres()
    redis_port, web_port, mcp_port = free_port(), free_port(), free_port()
    env, database = environment(pg.port, redis_port, mcp_port, fakes)
    os.environ.update(env)  # this process (set-up and audit) talks to PostgreSQL directly
    subprocess.run(["createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", database], check=True)
    subprocess.run([PY, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    pg_proxy = PostgresProxy(pg.port)
    stack_env = {**env, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{pg_proxy.port}/{database}"}
    import django

    django.setup()
    stack = Stack(stack_env, redis_port=redis_port, web_port=web_port, mcp_port=mcp_port, pg=pg, pg_proxy=pg_proxy)
    rows, memory = [], []
    try:
        stack.start()
        print(
            f"stack: private PostgreSQL :{pg.port}, redis :{redis_port}, web :{web_port}, mcp :{mcp_port}, "
            f"workers w1,w2 (x3), asr (x1), beat; load average {os.getloadavg()}; knobs {KNOBS}",
            flush=True,
        )
        schedule = iter(faults) if soak_until is None else iter(lambda: chooser.choice(faults), None)
        for fault in schedule:
            slot_started = time.monotonic()
            if soak_until is not None and slot_started > soak_until:
                break
            if (fault == "redis_restart_aof") != stack.aof:
                stack.kill(stack.redis)
                stack.start_redis(aof=fault == "redis_restart_aof")
            stack.revive()
            time.sleep(3)
            result = experiment(args, stack, fault, fakes)
            result["load_average"] = [round(x, 2) for x in os.getloadavg()]
            rows.append(result)
            procs = {"web": stack.web, **stack.workers}
            memory.append({name: (p.pid, rss_kib(p)) for name, p in procs.items() if p is not None})
            print(json.dumps(result, ensure_ascii=False, default=str), flush=True)
            if soak_until is not None:  # the next fault comes --fault-every seconds after this one
                time.sleep(
                    max(0.0, min(args.fault_every - (time.monotonic() - slot_started), soak_until - time.monotonic()))
                )
    finally:
        stack.stop()
        for fake in fakes.values():
            fake.stop()
        from django.db import connections

        connections.close_all()
        pg.stop()
    table(rows, memory, args)
    return 0 if rows and all(chaos_audit.done(row) and not row["http_500"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
