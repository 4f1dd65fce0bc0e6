"""The product is stateless across hosts: three network namespaces on one machine (tests/netns_hosts.py).

Host `db` runs private PostgreSQL and Redis instances; hosts `a` and `b` run web (daphne) and a
Celery worker each of this tree; the MCP sidecar runs on `a`. What one host starts, another finishes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import threading
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

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
    import boto3
    from moto.server import ThreadedMotoServer

    from tests.fakes.fake_asr import FakeAsrServer

    hosts = Cluster(("a", "b"))
    moto = asr = None
    try:
        hosts.start_network()
        # Media in S3 (moto in server mode) and the speech-to-text API (the fake), both outside the
        # app hosts: on the bridge, where this process listens.
        address = hosts.bridge_address
        moto = ThreadedMotoServer(ip_address=address, port=55000, verbose=False)
        moto.start()
        s3 = boto3.client(
            "s3",
            endpoint_url=f"http://{address}:55000",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            region_name="us-east-1",
        )
        s3.create_bucket(Bucket="anmei-media")
        asr = FakeAsrServer()
        asr.httpd.server_close()  # serve it on the bridge instead of 127.0.0.1
        asr.httpd = ThreadingHTTPServer((address, 0), asr.httpd.RequestHandlerClass)
        asr.httpd.daemon_threads = True
        asr._thread = threading.Thread(target=asr.httpd.serve_forever, daemon=True)
        asr.start()
        hosts.asr = asr
        hosts.extra_env = {
            "MEDIA_STORAGE": "s3",
            "MEDIA_S3_ENDPOINT_URL": f"http://{address}:55000",
            "MEDIA_S3_BUCKET": "anmei-media",
            "MEDIA_S3_ACCESS_KEY": "test",
            "MEDIA_S3_SECRET_KEY": "test",
            "ASR_BACKEND": "openai-api",
            "ASR_MODEL": "sensevoice-small",
            "ASR_API_BASE_URL": f"http://{address}:{asr.httpd.server_address[1]}",
            "OUTBOUND_ALLOWED_PRIVATE_HOSTS": address,
        }
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
        if asr is not None:
            asr.stop()
        if moto is not None:
            moto.stop()


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


async def _console_events(url: str, ticket: str, until: str, during, timeout: float = 90) -> list[dict]:
    """Open /ws/console/ on `url` (a minimal RFC 6455 client), run `during()` once it is ready, and
    return the events received up to the first of type `until`."""
    host, port = urlsplit(url).hostname, urlsplit(url).port
    reader, writer = await asyncio.open_connection(host, port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET /ws/console/?ticket={ticket} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: http://{host}:{port}\r\n\r\n"
        ).encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.split()[1] == b"101", head

    async def frame() -> dict | None:
        first, second = await reader.readexactly(2)
        length = second & 0x7F
        if length == 126:
            length = int.from_bytes(await reader.readexactly(2), "big")
        elif length == 127:
            length = int.from_bytes(await reader.readexactly(8), "big")
        payload = await reader.readexactly(length)
        return json.loads(payload) if first & 0x0F == 1 else None

    events: list[dict] = []

    async def read_until(kind: str) -> None:
        while True:
            event = await frame()
            if event is not None:
                events.append(event)
                if event.get("type") == kind:
                    return

    try:
        await asyncio.wait_for(read_until("connection.ready"), timeout)
        await asyncio.to_thread(during)
        await asyncio.wait_for(read_until(until), timeout)
    finally:
        writer.close()
    return events


def test_a_console_on_b_sees_the_customer_who_registered_through_a(cluster):
    # Given a consultant whose console is open on host B, and a worker on host A
    cluster.manage(
        "a",
        "shell",
        "-c",
        "from anmei.accounts.services import user_create; from anmei.tenants.models import Tenant\n"
        f"user_create(tenant=Tenant.objects.get(slug='multi'), username='ben', password='{PASSWORD}', "
        "role='consultant', nickname='Ben')",
    )
    login = requests.post(
        f"{cluster.urls['b']}/api/v1/auth/login",
        json={"tenant": "multi", "username": "ben", "password": PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    ticket = requests.post(
        f"{cluster.urls['b']}/api/v1/auth/ws-ticket", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ).json()["ticket"]
    cluster.start_worker("a")
    try:
        # When a customer registers through host A
        registered = {}

        def register() -> None:
            registered["id"] = _register(cluster.urls["a"], "erin")

        events = asyncio.run(_console_events(cluster.urls["b"], ticket, "new_customer", register))
    finally:
        cluster.stop("a", "worker")
    # Then B's console is told, with her welcome message written on A's side of the platform
    new_customer = events[-1]
    assert (new_customer["type"], new_customer["customer_id"]) == ("new_customer", registered["id"])
    conversation = cluster.psql(f"SELECT id FROM conversations_conversation WHERE customer_id = {registered['id']}")
    assert new_customer["conversation_id"] == int(conversation)


def test_voice_uploaded_through_a_is_transcribed_on_b_and_played_through_a(cluster, speech_wav):
    # Given a clinic's bot and consultant, and workers only on host B
    out = cluster.manage(
        "a",
        "shell",
        "-c",
        "from anmei.accounts.services import user_create; from anmei.tenants.models import Tenant\n"
        "from anmei.bots.services.instances import bot_create\n"
        "t = Tenant.objects.get(slug='multi')\n"
        f"user_create(tenant=t, username='vera', password='{PASSWORD}', role='consultant')\n"
        "print(bot_create(tenant_id=t.id, name='voice', platform='wecom', callback_url='https://bot.example.com')[1])",
    )
    bot_token = out.split()[-1]
    cluster.start_worker("b")
    try:
        # When the bot uploads a voice message through host A
        sent = requests.post(
            f"{cluster.urls['a']}/api/v1/bot/messages",
            headers={"Authorization": f"Bearer {bot_token}"},
            data={"platform": "wecom", "user_id": "wx-v1", "nickname": "小美", "type": "voice", "message_id": "v-1"},
            files={"file": ("a.wav", speech_wav, "application/octet-stream")},
            timeout=60,
        )
        assert sent.status_code == 202, sent.text
        task_id = sent.json()["asr_task_id"]

        # Then B's worker transcribes it (the audio came from S3, not from A's disk)
        def status():
            return cluster.psql(f"SELECT status FROM asr_asrtask WHERE asr_task_id = '{task_id}'")

        assert poll(lambda: status() in ("success", "failed"), timeout=120)
        assert status() == "success", cluster.psql(
            f"SELECT error_code || ' ' || error_message FROM asr_asrtask WHERE asr_task_id = '{task_id}'"
        )
        assert cluster.psql(f"SELECT text FROM asr_asrtask WHERE asr_task_id = '{task_id}'") == cluster.asr.text
    finally:
        cluster.stop("b", "worker")
    # And a consultant plays it through host A
    login = requests.post(
        f"{cluster.urls['a']}/api/v1/auth/login",
        json={"tenant": "multi", "username": "vera", "password": PASSWORD},
        timeout=30,
    ).json()
    auth = {"Authorization": f"Bearer {login['token']}"}
    conversation = cluster.psql(f"SELECT conversation_id FROM asr_asrtask WHERE asr_task_id = '{task_id}'")
    listed = f"{cluster.urls['a']}/api/v1/conversations/{conversation}/messages"
    messages = requests.get(listed, headers=auth, timeout=30)
    assert messages.status_code == 200, messages.text
    items = messages.json()
    items = items.get("results", items) if isinstance(items, dict) else items
    (voice,) = [m for m in items if m.get("type") == "voice"]
    media_url = voice["media_url"]
    played = requests.get(media_url if media_url.startswith("http") else f"{cluster.urls['a']}{media_url}", timeout=30)
    assert played.status_code == 200
    assert len(played.content) > 1000


def test_one_beat_across_hosts_sends_each_tick_once_and_each_runs_once(cluster, broker):
    # Given a periodic task every second, workers on both hosts, and the one beat on host A
    cluster.manage(
        "a",
        "shell",
        "-c",
        "from django_celery_beat.models import IntervalSchedule, PeriodicTask\n"
        "every, _ = IntervalSchedule.objects.get_or_create(every=1, period='seconds')\n"
        "PeriodicTask.objects.create(name='netns-tick', task='workers.diagnostics.echo', interval=every, "
        "args='[\"tick\"]')",
    )
    for key in broker.scan_iter("celery-task-meta-*"):
        broker.delete(key)
    cluster.start_worker("a")
    cluster.start_worker("b")
    cluster.start_beat("a")

    def sent() -> int:
        sql = "SELECT total_run_count FROM django_celery_beat_periodictask WHERE name = 'netns-tick'"
        return int(cluster.psql(sql))

    def ran() -> list[dict]:
        results = [json.loads(broker.get(key)) for key in broker.scan_iter("celery-task-meta-*")]
        return [r["result"] for r in results if r.get("status") == "SUCCESS" and r["result"]["value"] == "tick"]

    try:
        assert poll(lambda: len(ran()) >= 6, timeout=120)
    finally:
        cluster.stop("a", "beat")  # beat records its sends on the way out
    try:
        # Then every tick beat sent ran exactly once, on whichever host took it
        assert poll(lambda: len(ran()) == sent(), timeout=60), (len(ran()), sent())
        assert {r["hostname"].split("@")[0] for r in ran()} <= {"hosta", "hostb"}
    finally:
        cluster.stop("a", "worker")
        cluster.stop("b", "worker")
        cluster.psql("DELETE FROM django_celery_beat_periodictask WHERE name = 'netns-tick'")
