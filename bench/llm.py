"""Session intelligence against a fake LLM with a fixed latency, against its performance targets (README, "make bench").

It starts a Celery worker (thread pool, `replies` + `default` queues) against DATABASE_URL / REDIS_URL
(use a scratch database; it is migrated) and a fake OpenAI-compatible server in this process, then:

1. suggestions: `--conversations` active conversations, each receiving a customer message every
   `--interval` s for `--duration` s (through `conversation_message_send`, as the API does);
   time from the send to `suggestion.new` on the consultant's channel-layer group.
2. summaries: `--ends` conversations ended one after another (`conversation_end`, as `/end` does);
   time from the end to `summary.ready`.
3. context build for a conversation of `--history` messages: `context_build` p95, against a
   baseline measured in the same run that reads and counts the whole history (no rolling summary).

Baselines: the fake LLM's own latency measured over HTTP in the same run (the floor of 1 and 2).
Targets: 1 p95 ≤ 1.3 s, 2 p95 ≤ LLM latency + 300 ms, 3 p95 ≤ 20 ms (at --latency 1.0).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/anmei_bench REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/llm.py --latency 1.0 --conversations 20 --interval 5 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import harness  # noqa: E402 - bench/ is on sys.path when a script runs
from harness import pct  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")
# The fake servers live on 127.0.0.1 and tenant URLs are SSRF-guarded (anmei.common.outbound).
os.environ.setdefault("OUTBOUND_ALLOWED_PRIVATE_HOSTS", "127.0.0.1")
PY = sys.executable

ANSWER = json.dumps(
    {
        "suggestions": [{"kind": "personalised", "text": "您好，玻尿酸一般可维持6到12个月。"}],
        "main_issues": "客户咨询玻尿酸",
        "solution": "顾问说明了维持时间",
        "evaluation": "回复及时",
        "follow_up": "三天后回访",
    },
    ensure_ascii=False,
)


def figures(name: str, values: list[float], target: float | None = None, baseline: float | None = None) -> None:
    if not values:
        print(f"{name}: no samples")
        return
    p50, p95, worst = pct(values, 0.5), pct(values, 0.95), max(values)
    line = f"{name}: n={len(values)} p50={p50 * 1000:.1f} ms p95={p95 * 1000:.1f} ms max={worst * 1000:.1f} ms"
    if baseline:
        line += f" | p95/baseline={p95 / baseline:.3f}"
    if target is not None:
        line += f" | target p95 <= {target * 1000:.0f} ms: {'MET' if p95 <= target else 'MISSED'}"
    print(line)


class Events:
    """Receives the events pushed to a set of user groups in one asyncio loop (in its own thread)."""

    def __init__(self, groups: list[str], event_type: str, key: str) -> None:
        from channels import DEFAULT_CHANNEL_LAYER
        from channels.layers import channel_layers

        self.layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
        self.groups, self.event_type, self.key = groups, event_type, key
        self.arrived: dict[int, float] = {}
        self.ready = threading.Event()
        self.stop = False
        threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True).start()
        self.ready.wait(10)

    async def _run(self) -> None:
        async def listen(group: str) -> None:
            channel = await self.layer.new_channel()
            await self.layer.group_add(group, channel)
            joined.append(group)
            if len(joined) == len(self.groups):
                self.ready.set()
            while not self.stop:
                try:
                    message = await asyncio.wait_for(self.layer.receive(channel), 0.5)
                except TimeoutError:
                    continue
                event = message.get("event") or {}
                if event.get("type") == self.event_type:
                    self.arrived.setdefault(event[self.key], time.perf_counter())

        joined: list[str] = []
        await asyncio.gather(*(listen(g) for g in self.groups))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=1.0)
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of messages not measured (cold worker)")
    parser.add_argument("--ends", type=int, default=20)
    parser.add_argument("--history", type=int, default=5000)
    parser.add_argument("--builds", type=int, default=200)
    parser.add_argument("--celery-concurrency", type=int, default=16)
    args = parser.parse_args()

    if not harness.django_on_postgres_with_redis("llm"):
        return
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    import requests

    from anmei.accounts.models import User
    from anmei.ai.context import context_build, turn
    from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
    from anmei.ai.tokens import count_messages
    from anmei.common.realtime import user_group
    from anmei.conversations.models import Conversation, Message
    from anmei.conversations.services import conversation_end, conversation_message_send
    from anmei.tenants.models import Tenant
    from celery_config import app as celery_app
    from tests.fakes.fake_openai import FakeOpenAI

    run = uuid.uuid4().hex[:8]
    fake = FakeOpenAI(api_key="sk-bench", latency=args.latency).start()
    fake.default_reply = ANSWER
    tenant = Tenant.objects.create(
        name=f"LLM bench {run}", slug=f"llm-{run}", contact_email="b@x.test", status="approved"
    )
    agent_config_update(
        config=agent_config_get_or_create(tenant_id=tenant.id),
        provider="openai",
        base_url=fake.url + "/v1",
        model="fake-gpt",
        api_key="sk-bench",
        timeout_seconds=10,
    )

    # Baseline: the fake LLM alone, over HTTP, same body size as a suggestion call.
    llm_alone = []
    for _ in range(5):
        started = time.perf_counter()
        requests.post(
            fake.url + "/v1/chat/completions",
            json={"model": "fake-gpt", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": "Bearer sk-bench"},
            timeout=10,
        )
        llm_alone.append(time.perf_counter() - started)
    baseline = pct(llm_alone, 0.5)
    print(f"baseline: fake LLM alone over HTTP p50={baseline * 1000:.1f} ms (latency knob {args.latency} s)")

    def person(name: str, role: str) -> User:
        user = User(tenant=tenant, username=f"{name}-{run}", role=role)
        user.set_unusable_password()  # no PBKDF2 cost in the bench
        user.save()
        return user

    consultants = [person(f"c{i}", "consultant") for i in range(args.conversations)]
    customers = [person(f"u{i}", "customer") for i in range(args.conversations)]
    conversations = [
        Conversation.objects.create(tenant=tenant, customer=u, consultant=c, status="active")
        for u, c in zip(customers, consultants, strict=True)
    ]

    celery_app.control.purge()
    log_path = Path(os.environ.get("BENCH_LOG_DIR", "/tmp")) / f"llm_bench_worker_{run}.log"
    worker = subprocess.Popen(
        [PY, "-m", "celery", "-A", "celery_config", "worker", "-Q", "replies,default", "--pool", "threads"]
        + ["--concurrency", str(args.celery_concurrency), "-l", "WARNING", "-n", f"llm-bench-{run}@%h"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=open(log_path, "w"),  # noqa: SIM115 - closed with the process
    )
    try:
        time.sleep(4)
        # 1. suggestions
        suggestions = Events([user_group(tenant.id, c.id) for c in consultants], "suggestion.new", "message_id")
        sent: dict[int, float] = {}
        lock = threading.Lock()

        measure_from = time.perf_counter() + args.warmup

        def talk(index: int) -> None:
            time.sleep(index * args.interval / args.conversations)  # spread the conversations over the interval
            deadline = time.monotonic() + args.duration + args.warmup
            n = 0
            while time.monotonic() < deadline:
                started = time.perf_counter()
                message = conversation_message_send(
                    user=customers[index],
                    conversation_id=conversations[index].id,
                    type="text",
                    content=f"玻尿酸能维持多久？{n}",
                )
                if started >= measure_from:
                    with lock:
                        sent[message.id] = started
                n += 1
                time.sleep(max(0.0, args.interval - (time.perf_counter() - started)))
            from django.db import connection

            connection.close()

        threads = [threading.Thread(target=talk, args=(i,)) for i in range(args.conversations)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        time.sleep(args.latency * 3 + 2)
        suggestions.stop = True
        latencies = [suggestions.arrived[m] - t for m, t in sent.items() if m in suggestions.arrived]
        if os.environ.get("BENCH_SAMPLES"):
            first = min(sent.values())
            samples = sorted((t - first, suggestions.arrived.get(m, 0) - t) for m, t in sent.items())
            Path(os.environ["BENCH_SAMPLES"]).write_text(json.dumps(samples))
        print(
            f"\n== suggestions: {args.conversations} active conversations, a customer message every "
            f"{args.interval} s each, {args.duration} s measured after {args.warmup} s of warm-up; "
            f"{len(sent)} messages, {len(latencies)} answered"
        )
        figures("customer message → suggestion.new", latencies, target=1.3, baseline=baseline)

        # 2. summaries
        summaries = Events([user_group(tenant.id, c.id) for c in consultants], "summary.ready", "conversation_id")
        ended: dict[int, float] = {}
        for conversation in conversations[: args.ends]:
            started = time.perf_counter()
            conversation_end(user=conversation.consultant, conversation_id=conversation.id)
            ended[conversation.id] = started
            time.sleep(0.5)
        time.sleep(args.latency * 3 + 2)
        summaries.stop = True
        latencies = [summaries.arrived[c] - t for c, t in ended.items() if c in summaries.arrived]
        print(f"\n== summaries: {len(ended)} conversations ended 0.5 s apart")
        figures("end → summary.ready", latencies, target=args.latency + 0.3, baseline=baseline)
    finally:
        worker.terminate()
        worker.wait(30)
        fake.stop()

    # 3. context build for a long conversation
    customer, consultant = customers[0], consultants[0]
    long = Conversation.objects.create(tenant=tenant, customer=customer, consultant=consultant, status="active")
    rows = [
        Message(
            tenant=tenant,
            conversation=long,
            sender_type="customer" if i % 2 == 0 else "consultant",
            content=f"第{i}条：请问玻尿酸和热玛吉哪个维持更久？价格大概多少？"
            if i % 2 == 0
            else f"第{i}条：玻尿酸6到12个月，热玛吉1到2年。",
        )
        for i in range(args.history)
    ]
    Message.objects.bulk_create(rows, batch_size=1000)
    started = time.perf_counter()
    context_build(tenant_id=tenant.id, conversation_id=long.id, system_prompt="你是助手。", budget=3000)
    print(
        f"\n== context build, {args.history}-message conversation (first build folds the history once: "
        f"{(time.perf_counter() - started) * 1000:.0f} ms)"
    )
    builds = []
    for i in range(args.builds):
        if i % 10 == 0:  # the conversation keeps growing while it is built
            Message.objects.create(tenant=tenant, conversation=long, sender_type="customer", content=f"新问题{i}")
        started = time.perf_counter()
        context_build(tenant_id=tenant.id, conversation_id=long.id, system_prompt="你是助手。", budget=3000)
        builds.append(time.perf_counter() - started)
    full = []
    for _ in range(max(5, args.builds // 20)):
        started = time.perf_counter()
        turns = [t for m in Message.objects.filter(conversation=long).order_by("created_at", "id") if (t := turn(m))]
        count_messages(turns)
        full.append(time.perf_counter() - started)
    full_p95 = pct(full, 0.95)
    print(f"baseline: full scan + token count of every message p95={full_p95 * 1000:.1f} ms")
    figures("context_build (rolling summary + window)", builds, target=0.020, baseline=full_p95)


if __name__ == "__main__":
    main()
