"""The product is stateless across hosts: three network namespaces on one machine (tests/netns_hosts.py).

Host `db` runs private PostgreSQL and Redis instances; hosts `a` and `b` run web (daphne) and a
Celery worker each of this tree; the MCP sidecar runs on `a`. What one host starts, another finishes.
"""

from __future__ import annotations

import signal

import pytest
import redis
import requests

from tests.helpers import poll
from tests.netns_hosts import REDIS_PORT, Cluster

REASON = Cluster.unavailable()
pytestmark = pytest.mark.skipif(REASON is not None, reason=f"multi-host test: {REASON}")

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def cluster():
    hosts = Cluster(("a", "b"))
    try:
        hosts.start_network()
        hosts.start_data_host()
        hosts.manage("a", "migrate", "--noinput")
        hosts.manage(
            "a",
            "shell",
            "-c",
            "from anmei.tenants.models import Tenant; "
            "Tenant.objects.create(name='Multi', slug='multi', contact_email='ops@multi.test', status='approved')",
        )
        hosts.start_mcp("a")
        hosts.urls = {host: hosts.start_web(host) for host in ("a", "b")}
        yield hosts
    finally:
        hosts.close()


@pytest.fixture
def broker(cluster):
    client = redis.Redis(host=cluster.addresses["db"], port=REDIS_PORT, db=0)
    yield client
    client.close()


def _register(url: str, username: str) -> int:
    response = requests.post(
        f"{url}/api/v1/auth/register",
        json={"tenant": "multi", "username": username, "password": PASSWORD, "nickname": username.title()},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_a_customer_registered_through_a_is_welcomed_by_the_worker_on_b(cluster):
    # Given workers only on host B
    cluster.start_worker("b")
    try:
        # When a customer registers through host A's web
        customer = _register(cluster.urls["a"], "dora")

        # Then B's worker runs the automation and the welcome is in her conversation
        def run_status():
            return cluster.psql(f"SELECT status FROM automation_automationrun WHERE customer_id = {customer}")

        assert poll(lambda: run_status() not in ("", "running"), timeout=120)
        assert run_status() == "succeeded"
        welcome = cluster.psql(
            "SELECT m.sender_type || ':' || m.external_id FROM conversations_message m "
            f"JOIN conversations_conversation c ON c.id = m.conversation_id WHERE c.customer_id = {customer}"
        )
        assert welcome == f"bot:welcome:{customer}"
        # And host B's web answers for her too: she logs in there and sees the same conversation
        login = requests.post(
            f"{cluster.urls['b']}/api/v1/auth/login",
            json={"tenant": "multi", "username": "dora", "password": PASSWORD},
            timeout=30,
        )
        assert login.status_code == 200, login.text
    finally:
        cluster.stop("b", "worker")


def test_killing_b_worker_mid_job_loses_nothing_and_runs_it_once_more_elsewhere(cluster, broker):
    marker, hold = "netns:probe:marker", "netns:probe:hold"
    broker.delete(marker, hold)
    # Given a job taken by host B's worker, held in the middle of its work
    cluster.start_worker("b")
    job_id = int(
        cluster.manage(
            "a",
            "shell",
            "-c",
            "from django.db import transaction; from anmei.jobs.services import job_schedule\n"
            "with transaction.atomic():\n"
            "    job = job_schedule(kind='probe', key='netns-kill', task='workers.diagnostics.job_probe', "
            f"lease_seconds=3, payload={{'marker': '{marker}', 'hold': '{hold}'}})\n"
            "print(job.id)",
        ).split()[-1]
    )
    assert poll(lambda: broker.lrange(marker, 0, -1) == [b"attempt:1"], timeout=60)
    # When B's worker is killed outright, and host A's worker and beat (the sweep) run
    cluster.stop("b", "worker", sig=signal.SIGKILL)
    broker.rpush(hold, "go")
    cluster.start_worker("a")
    cluster.start_beat("a", JOBS_SWEEP_SECONDS="1")
    try:
        # Then the job is finished on A: once more, and only once
        assert poll(lambda: cluster.psql(f"SELECT state FROM jobs_job WHERE id = {job_id}") == "done", timeout=120)
        assert broker.lrange(marker, 0, -1) == [b"attempt:1", b"attempt:2"]
        assert cluster.psql(f"SELECT attempts FROM jobs_job WHERE id = {job_id}") == "2"
    finally:
        cluster.stop("a", "beat")
        cluster.stop("a", "worker")
