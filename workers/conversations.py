"""Celery tasks: conversations (thin: load by id, call a service, retry/alert)."""

from __future__ import annotations

from celery_config import app


@app.task(name="workers.conversations.end_inactive")
def end_inactive() -> int:
    """Beat: end open conversations idle past their tenant's inactivity timeout."""
    from anmei.conversations.services import conversation_end_inactive

    return conversation_end_inactive()
