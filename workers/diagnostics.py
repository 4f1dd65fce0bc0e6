"""Tasks that prove the worker wiring end to end (health checks, tests)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.diagnostics.echo", ignore_result=False)
def echo(value: str) -> dict:
    """Return the value with the delivery facts a test or operator wants to see."""
    request = echo.request
    return {
        "value": value,
        "queue": (request.delivery_info or {}).get("routing_key"),
        "acks_late": bool(echo.acks_late),
        "hostname": request.hostname,
    }
