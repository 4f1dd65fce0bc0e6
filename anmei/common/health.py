"""Liveness of what the platform needs: database, Redis, broker, at least one worker."""

from __future__ import annotations

import time

import redis
from django.conf import settings
from django.db import connection
from kombu import Connection


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
        result = {"status": "ok"}
        if detail:
            result.update(detail)
    except Exception as exc:  # noqa: BLE001 - any failure means the check is down; say which
        result = {"status": "down", "error": type(exc).__name__ + (f": {exc}" if str(exc) else "")}
    result["duration_ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_redis() -> None:
    timeout = settings.HEALTH_CHECK_TIMEOUT_SECONDS
    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def check_broker() -> None:
    with Connection(settings.CELERY_BROKER_URL, connect_timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS)


def check_workers() -> dict:
    from celery_config import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS)
        replies = app.control.ping(timeout=settings.HEALTH_CHECK_TIMEOUT_SECONDS, connection=conn)
    if not replies:
        raise RuntimeError("no worker answered ping")
    return {"count": len(replies)}


CHECKS = {"database": check_database, "redis": check_redis, "broker": check_broker, "workers": check_workers}


def health_report() -> tuple[bool, dict]:
    checks = {name: _timed(check) for name, check in CHECKS.items()}
    if checks["broker"]["status"] != "ok" and checks["workers"]["status"] != "ok":
        checks["workers"] = {"status": "down", "error": "broker unreachable", "duration_ms": 0.0}
    healthy = all(c["status"] == "ok" for c in checks.values())
    return healthy, checks
