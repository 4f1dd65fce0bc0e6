"""A worker SIGKILLed in the middle of a chain: another worker finishes it, exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from anmei.ai.services.agent_config import agent_config_get_or_create, agent_config_update
from anmei.automation.models import AutomationRun, AutomationStep
from anmei.conversations.models import Conversation, Message
from anmei.notifications.models import Notification
from tests.fixtures_automation import ROOT, register, subprocess_env, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

VISIBILITY_TIMEOUT = 2  # seconds before an unacknowledged task goes back to the queue
LEASE_SECONDS = 3  # seconds before a step's job held by a dead worker may be taken again


def _start_worker(name: str) -> subprocess.Popen:
    env = subprocess_env(CELERY_BROKER_VISIBILITY_TIMEOUT=str(VISIBILITY_TIMEOUT), LOG_LEVEL="WARNING")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_config",
            "worker",
            "--pool=solo",
            "-Q",
            "default",
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_sigkilled_worker_mid_chain_is_finished_by_another_worker_exactly_once(
    tenant_a, carol, anon, fake_dify, celery_app, settings
):
    from anmei.jobs.services import jobs_sweep

    settings.AUTOMATION_STEP_LEASE_SECONDS = LEASE_SECONDS  # the killed worker's step is handed on after this
    celery_app.control.purge()
    agent_config_update(
        config=agent_config_get_or_create(tenant_id=tenant_a.id),
        provider="dify",
        base_url=fake_dify.url,
        api_key="app-dify-secret",
        timeout_seconds=10,
    )
    fake_dify.latency = 3.0  # generate_welcome is in flight long enough to be killed
    first = _start_worker("first")
    second = None
    try:
        created = register(anon, "quinn", nickname="Quinn")
        wait_for(lambda: len(fake_dify.requests) == 1, timeout=60)  # worker 1 is inside generate_welcome
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        killed_at = time.monotonic()
        fake_dify.latency = 0.0
        run = AutomationRun.objects.get(customer_id=created["id"])
        assert run.status == "running" and not run.welcome_text
        assert list(AutomationStep.objects.filter(run=run).values_list("step", flat=True)) == [
            "create_default_conversation"
        ]

        time.sleep(max(0.0, VISIBILITY_TIMEOUT + 0.5 - (time.monotonic() - killed_at)))
        second = _start_worker("second")
        # (the test sweeps in place of beat: the lease of the killed step expires, the sweep re-sends it)
        run = wait_for(
            lambda: jobs_sweep() * 0 or AutomationRun.objects.filter(pk=run.pk).exclude(status="running").first(),
            timeout=90,
        )
    finally:
        _stop(first, signal.SIGKILL)
        if second is not None:
            _stop(second)

    assert run.status == "succeeded" and run.welcome_source == "agent"
    assert len(fake_dify.requests) == 2  # the killed call, then the redelivered one
    assert Conversation.objects.filter(customer_id=created["id"]).count() == 1
    welcome = Message.objects.get(conversation__customer_id=created["id"])
    assert welcome.external_id == f"welcome:{created['id']}" and welcome.content.startswith("Quinn，")
    assert list(Notification.objects.values_list("user_id", "kind")) == [(carol.id, "new_customer")]
    steps = list(
        AutomationStep.objects.filter(run=run).order_by("started_at").values_list("step", "attempt", "success")
    )
    assert steps == [
        ("create_default_conversation", 1, True),
        ("generate_welcome", 1, True),
        ("deliver_welcome", 1, True),
        ("notify_consultants", 1, True),
        ("record_metrics", 1, True),
    ]
