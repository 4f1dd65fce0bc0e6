"""Prometheus metrics: what each process records, and what `/metrics` computes when scraped.

Recorded where they happen (every process: web, ws, Celery workers, the MCP sidecar):
request latency by route, task runtimes/retries/failures by task, WebSocket connections, MCP call
latency, registration end-to-end latency. Computed at scrape time from the record of work (the
database and the broker): queue lengths and due-but-not-running jobs per pipeline (the stuck gauge).

Multi-process safe: with PROMETHEUS_MULTIPROC_DIR set (the launcher and docker-compose set it),
every process writes its own files there and `/metrics` merges them (prometheus_client's
multiprocess mode). The files are named by host and pid, so containers sharing the directory
through a volume never collide.
"""

from __future__ import annotations

import hmac
import logging
import os
import socket

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger("anmei.metrics")

MULTIPROCESS = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
if MULTIPROCESS:  # before the first metric is built: its value class decides where samples go
    _host = socket.gethostname().replace("_", "-")
    values.ValueClass = values.MultiProcessValue(lambda: f"{_host}-{os.getpid()}")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TASK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

HTTP_REQUEST_SECONDS = Histogram(
    "anmei_http_request_duration_seconds",
    "HTTP request latency by route pattern",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
TASK_SECONDS = Histogram("anmei_task_duration_seconds", "Celery task run time by task", ["task"], buckets=TASK_BUCKETS)
TASK_RETRIES = Counter("anmei_task_retries_total", "Task attempts that will be retried, by task", ["task"])
TASK_FAILURES = Counter("anmei_task_failures_total", "Task attempts that failed for good, by task", ["task"])
WEBSOCKET_CONNECTIONS = Gauge(
    "anmei_websocket_connections", "Open WebSocket connections", ["endpoint"], multiprocess_mode="livesum"
)
MCP_CALL_SECONDS = Histogram(
    "anmei_mcp_call_duration_seconds", "MCP tool call latency", ["side", "outcome"], buckets=LATENCY_BUCKETS
)
REGISTRATION_SECONDS = Histogram(
    "anmei_registration_end_to_end_seconds",
    "Registration commit to automation run finished",
    buckets=(0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
)


# Scrape-time collectors of apps above `common` (it imports none of them): callables yielding metric
# families, appended by their AppConfig.ready().
LIVE_COLLECTORS: list = []


def task_outcome(task: str, outcome: str) -> None:
    """Count a retry or a final failure of `task` (outcome: retry or failed)."""
    if outcome == "retry":
        TASK_RETRIES.labels(task=task).inc()
    elif outcome == "failed":
        TASK_FAILURES.labels(task=task).inc()


class LiveFigures:
    """Gauges read at scrape time: broker queue lengths and the jobs due but not running."""

    def collect(self):
        from django.conf import settings

        queues = GaugeMetricFamily("anmei_queue_length", "Messages waiting in a Celery queue", labels=["queue"])
        try:
            import redis

            client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
            try:
                names = (settings.CELERY_DEFAULT_QUEUE, settings.CELERY_ASR_QUEUE, settings.CELERY_REPLIES_QUEUE)
                for name in names:
                    queues.add_metric([name], float(client.llen(name)))
            finally:
                client.close()
        except Exception:  # noqa: BLE001 - a broker outage must not break the scrape
            logger.warning("metrics: queue lengths unavailable", exc_info=True)
        yield queues
        yield _dependencies_up()
        for collect in LIVE_COLLECTORS:  # apps above common add theirs (anmei.jobs: due and stuck jobs)
            yield from collect()


def _dependencies_up() -> GaugeMetricFamily:
    """1 when this process reaches PostgreSQL / Redis now, 0 when not (the health checks' probes)."""
    from anmei.common.health import check_database, check_redis

    up = GaugeMetricFamily(
        "anmei_dependency_up", "1 when PostgreSQL/Redis answer the scrape's probe", labels=["dependency"]
    )
    for name, check in (("database", check_database), ("redis", check_redis)):
        try:
            check()
            up.add_metric([name], 1.0)
        except Exception:  # noqa: BLE001 - down is the answer, not an error of the scrape
            up.add_metric([name], 0.0)
    return up


def registry() -> CollectorRegistry:
    """A registry with this process's (or every process's) samples plus the live figures."""
    if MULTIPROCESS:
        found = CollectorRegistry()
        multiprocess.MultiProcessCollector(found)
    else:
        found = CollectorRegistry(auto_describe=True)
        found.register(_ProcessSamples())
    found.register(LiveFigures())
    return found


class _ProcessSamples:
    """This process's own metrics (single-process mode), re-exported from the default registry."""

    def collect(self):
        yield from prometheus_client.REGISTRY.collect()


def metrics_allowed(*, authorization: str, remote_addr: str) -> bool:
    """Bearer METRICS_TOKEN (constant-time), or any local caller in DEBUG when no token is set."""
    from django.conf import settings

    token = settings.METRICS_TOKEN
    if token:
        scheme, _, given = authorization.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())
    return bool(settings.DEBUG) and remote_addr in ("127.0.0.1", "::1")


def mark_process_dead(pid: int) -> None:
    """gunicorn's child_exit: drop a dead worker's live gauges (its counters stay summed)."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(f"{socket.gethostname().replace('_', '-')}-{pid}")


_task_started: dict[str, float] = {}


def connect_celery_signals() -> None:
    """Time every task and count Celery-level retries and failures (celery_config calls this once)."""
    import time

    from celery import signals

    @signals.task_prerun.connect(weak=False)
    def _started(task_id=None, **_):
        _task_started[task_id] = time.perf_counter()

    @signals.task_postrun.connect(weak=False)
    def _finished(task_id=None, task=None, **_):
        started = _task_started.pop(task_id, None)
        if started is not None and task is not None:
            TASK_SECONDS.labels(task=task.name).observe(time.perf_counter() - started)

    @signals.task_retry.connect(weak=False)
    def _retried(sender=None, **_):
        task_outcome(getattr(sender, "name", "unknown"), "retry")

    @signals.task_failure.connect(weak=False)
    def _failed(sender=None, **_):
        task_outcome(getattr(sender, "name", "unknown"), "failed")
