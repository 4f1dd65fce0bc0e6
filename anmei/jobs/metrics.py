"""The jobs' scrape-time figures for `/metrics` (registered with anmei.common.metrics by JobsConfig)."""

from __future__ import annotations

import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

logger = logging.getLogger("anmei.metrics")


def jobs_figures():
    """Jobs due past the stuck threshold (the stuck gauge) and jobs due now, per pipeline."""
    stuck = GaugeMetricFamily(
        "anmei_jobs_due_not_running",
        "Jobs due for longer than the stuck threshold and not leased, per pipeline (the stuck gauge)",
        labels=["kind"],
    )
    waiting = GaugeMetricFamily(
        "anmei_jobs_due", "Jobs due now and not running (waiting for a worker), per pipeline", labels=["kind"]
    )
    try:
        from anmei.jobs.selectors import jobs_due_counts, jobs_stuck_counts

        for kind, count in sorted(jobs_stuck_counts().items()):
            stuck.add_metric([kind], float(count))
        for kind, count in sorted(jobs_due_counts().items()):
            waiting.add_metric([kind], float(count))
    except Exception:  # noqa: BLE001 - a database outage must not break the scrape
        logger.warning("metrics: job counts unavailable", exc_info=True)
    resent = CounterMetricFamily(
        "anmei_jobs_resent",
        "Messages the jobs sweep re-sent (lost, held too long, or lease expired), per pipeline",
        labels=["kind"],
    )
    lost = CounterMetricFamily(
        "anmei_jobs_lost",
        "Job messages the sweep found lost (in no queue, held by no worker), per pipeline",
        labels=["kind"],
    )
    try:
        from anmei.jobs.selectors import jobs_resend_totals

        for kind, (resent_count, lost_count) in sorted(jobs_resend_totals().items()):
            resent.add_metric([kind], float(resent_count))
            lost.add_metric([kind], float(lost_count))
    except Exception:  # noqa: BLE001
        logger.warning("metrics: job re-send totals unavailable", exc_info=True)
    yield stuck
    yield waiting
    yield resent
    yield lost
