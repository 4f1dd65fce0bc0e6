"""Celery tasks: statistics rollups (thin: call a service; every run recomputes a window, so a
lost or repeated run is harmless and the next one catches up)."""

from __future__ import annotations

from celery_config import app


@app.task(name="workers.stats.rollup_recent")
def rollup_recent() -> int:
    """Beat: re-roll the last hours (and touched conversations' start hours) of every tenant."""
    from anmei.stats.services.windows import stats_rollup_tenants_recent

    return stats_rollup_tenants_recent()


@app.task(name="workers.stats.rollup_daily")
def rollup_daily() -> int:
    """Beat: re-roll the last local days whole (re-contacts, hot words, registration conversion)."""
    from anmei.stats.services.windows import stats_rollup_tenants_daily

    return stats_rollup_tenants_daily()
