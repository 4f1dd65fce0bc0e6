"""The jobs' scrape-time figures for `/metrics` (registered with anmei.common.metrics by JobsConfig)."""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger("anmei.metrics")


def jobs_figures():
    """Jobs due past the stuck threshold (the stuck gauge), jobs due now and jobs failed, per pipeline."""
    stuck = GaugeMetricFamily(
        "anmei_jobs_due_not_running",
        "Jobs due for longer than the stuck threshold and not leased, per pipeline (the stuck gauge)",
        labels=["kind"],
    )
    waiting = GaugeMetricFamily(
        "anmei_jobs_due", "Jobs due now and not running (waiting for a worker), per pipeline", labels=["kind"]
    )
    failed = GaugeMetricFamily(
        "anmei_jobs_failed",
        "Jobs that failed for good (retries exhausted), per pipeline; Flower shows their tasks as succeeded",
        labels=["kind"],
    )
    try:
        from anmei.jobs.selectors import jobs_due_counts, jobs_failed_counts, jobs_stuck_counts

        for kind, count in sorted(jobs_stuck_counts().items()):
            stuck.add_metric([kind], float(count))
        for kind, count in sorted(jobs_due_counts().items()):
            waiting.add_metric([kind], float(count))
        for kind, count in sorted(jobs_failed_counts().items()):
            failed.add_metric([kind], float(count))
    except Exception:  # noqa: BLE001 - a database outage must not break the scrape
        logger.warning("metrics: job counts unavailable", exc_info=True)
    yield stuck
    yield waiting
    yield failed
