"""Tasks that prove the worker wiring end to end (health checks, tests)."""

from __future__ import annotations

from celery_config import app
from workers.base import job_task


@app.task(name="workers.diagnostics.echo", ignore_result=False)
def echo(value: str) -> dict:
    """Return the value with the delivery facts a test or operator wants to see."""
    request = echo.request
    return {
        "value": value,
        "queue": (request.delivery_info or {}).get("routing_key"),
        "acks_late": bool(echo.acks_late),
        "hostname": request.hostname,
    }


def _probe_failed(job, error: str) -> None:
    from anmei.common.redis import get_redis

    get_redis().rpush(job.payload["marker"], f"failed:{error}")


@job_task("workers.diagnostics.job_probe", on_failed=_probe_failed)
def job_probe(job) -> None:
    """A durable job that does nothing but report its attempts: proves the job wiring end to end.

    Payload: `marker` (a Redis list each attempt appends to), `fail_attempts` (attempts 1…n raise),
    `permanent` (fail at once with JobFailed), `hold` (a Redis list: the attempt waits, at most `hold_seconds` (60),
    until a token is pushed there — work that stays in flight until a test lets it go).
    """
    from anmei.common.redis import get_redis
    from anmei.jobs.services import JobFailed

    get_redis().rpush(job.payload["marker"], f"attempt:{job.attempts}")
    if job.payload.get("hold"):
        _hold(job.payload["hold"], job.payload.get("hold_seconds", 60))
    if job.payload.get("permanent"):
        raise JobFailed("PROBE_PERMANENT", "asked to fail")
    if job.attempts <= job.payload.get("fail_attempts", 0):
        raise RuntimeError(f"probe failure {job.attempts}")


def _hold(key: str, seconds: int) -> None:
    """Wait up to `seconds` for a token on `key`.

    The shared client's 2 s socket timeout is shorter than the wait: a BLPOP on it raises TimeoutError
    after 2 s, so a "held" job failed and went to a countdown retry (no longer work in flight) whenever a
    caller took longer than that. The wait gets its own connection with a timeout past the BLPOP's.
    """
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=seconds + 10)
    try:
        client.blpop([key], timeout=seconds)
    finally:
        client.close()


@app.task(name="workers.diagnostics.sleep")
def sleep(seconds: float) -> float:
    """Hold a worker for `seconds` without touching Redis: fault tests finish tasks while the broker is down."""
    import time

    time.sleep(seconds)
    return seconds
