"""Celery tasks: statistics rollups (thin: call a service; every run recomputes a window, so a
lost or repeated run is harmless and the next one catches up)."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.stats.rollup_recent", acks_late=True)
def rollup_recent() -> int:
    """Beat: re-roll the last hours (and touched conversations' start hours) of every tenant."""
    from anmei.stats.services.windows import stats_rollup_tenants_recent

    return stats_rollup_tenants_recent()


@shared_task(name="workers.stats.rollup_daily", acks_late=True)
def rollup_daily() -> int:
    """Beat: re-roll the last local days whole (re-contacts, hot words, registration conversion)."""
    from anmei.stats.services.windows import stats_rollup_tenants_daily

    return stats_rollup_tenants_daily()
