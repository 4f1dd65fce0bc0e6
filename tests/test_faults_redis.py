"""A worker survives Redis restarts while its tasks finish during the outage.

Celery acknowledges a late-ack task when it finishes. If the broker went away meanwhile, kombu's
Redis QoS builds a client from a transport that has already let go of its connection; without
`anmei.common.kombu_fix` that raises AttributeError, which Celery reports as "Unrecoverable error"
and the worker exits. Here a redis-server of the test's own (a free port, never the shared one) is
killed and started again RESTARTS times, each time with tasks running that finish while it is down.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis as redis_client

from celery_config import app
from tests.fixtures_automation import free_port, wait_for
from tests.test_faults import ROOT, Stack, redis_server

pytestmark = [pytest.mark.django_db(transaction=True)]

RESTARTS = int(os.environ.get("FAULT_REDIS_RESTARTS", "12"))
TASK_SECONDS = 1.5  # running when Redis is killed, finished before it is back


class PrivateRedis:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def answers(self) -> bool:
        try:
            return bool(redis_client.Redis(port=self.port, socket_connect_timeout=0.2).ping())
        except redis_client.ConnectionError:
            return False

    def start(self) -> None:
        args = [redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, start_new_session=True)
        wait_for(self.answers, timeout=15)

    def kill(self) -> None:
        if self.process is not None:
            Stack.kill(self.process)
            self.process = None


def _worker(stack: Stack, name: str) -> subprocess.Popen:
    """A prefork worker, as compose runs them: the pool finishes tasks while the consumer reconnects."""
    log = open(os.environ.get("FAULT_LOG_DIR", "/tmp") + f"/worker-{name}.log", "w")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_config", "worker", "--pool=prefork", "-c", "2"]
        + ["-Q", "default", "-n", f"{name}@%h", "--without-mingle", "--without-gossip", "--loglevel=INFO"],
        cwd=ROOT,
        env=stack.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stack.processes.append(process)
    return process


def _send(broker_url: str, name: str, args: list) -> None:
    with app.connection_for_write(broker_url) as conn:
        app.send_task(name, args=args, queue="default", connection=conn)


@pytest.mark.parametrize("settle", ["ack", "reject", "requeue"])
def test_settling_a_message_after_the_broker_connection_closed_is_a_connection_error(settle):
    # given a message taken late-ack from a channel whose connection then closed (a Redis restart:
    # the channel's pools are gone and its transport has let go of the connection info)
    import logging

    from kombu import Connection, Exchange, Queue

    queue = Queue("faults-settle", Exchange("faults-settle"), "faults-settle")
    connection = Connection(os.environ["REDIS_URL"])
    connection.Producer().publish({"n": 1}, exchange=queue.exchange, routing_key=queue.routing_key, declare=[queue])
    taken = []
    connection.Consumer([queue], callbacks=[lambda body, message: taken.append(message)], accept=["json"]).consume()
    connection.drain_events(timeout=10)
    message = taken[0]
    message.channel._disconnect_pools()
    message.channel.connection.client = None  # what kombu's Connection._do_close_transport leaves
    errors = connection.connection_errors
    # when the worker settles it the way Celery does (ack_log_error / reject_log_error)
    log = logging.getLogger("tests.faults")
    if settle == "ack":
        message.ack_log_error(log, errors)
    else:
        message.reject_log_error(log, errors, requeue=settle == "requeue")
    # then that was a logged connection error, not an exception that stops the worker; the message
    # is still in kombu's unacked hash, so the visibility timeout restores it
    assert message._state == "RECEIVED"
    assert redis_client.Redis.from_url(os.environ["REDIS_URL"]).hlen("unacked") == 1
    message.channel.qos._delivered.clear()  # nothing for the garbage collector to restore


def test_workers_survive_repeated_redis_restarts_with_tasks_finishing_during_each_outage():
    # given a private Redis and two prefork workers on it
    redis = PrivateRedis()
    redis.start()
    stack = Stack(redis.url)
    marker_client = redis_client.Redis(port=redis.port, decode_responses=True)
    try:
        workers = [_worker(stack, "w1"), _worker(stack, "w2")]
        for round_ in range(RESTARTS):
            # every worker is connected: each takes a marker task and answers
            marker = f"alive:{round_}"
            for index in range(len(workers) * 2):
                _send(redis.url, "workers.registration.noop", [index, marker])
            wait_for(lambda c=marker_client, m=marker: c.llen(m) == len(workers) * 2, timeout=90)
            # when tasks are running and Redis is killed under them, and they finish while it is down
            for _ in range(len(workers) * 2):
                _send(redis.url, "workers.diagnostics.sleep", [TASK_SECONDS])
            time.sleep(0.5)  # the workers take them (they ack late: the messages are unacked)
            redis.kill()
            time.sleep(TASK_SECONDS + 1.0)
            redis.start()
            marker_client = redis_client.Redis(port=redis.port, decode_responses=True)
        # then after the last restart every worker still lives and takes work
        wait_for(lambda: all(w.poll() is None for w in workers), timeout=5)
        for index in range(len(workers) * 2):
            _send(redis.url, "workers.registration.noop", [index, "alive:end"])
        wait_for(lambda: marker_client.llen("alive:end") == len(workers) * 2, timeout=90)
        alive = [w.poll() is None for w in workers]
    finally:
        stack.stop()
        redis.kill()
    assert (RESTARTS, alive) == (RESTARTS, [True, True])
