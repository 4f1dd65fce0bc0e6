"""The jobs' scrape-time figures for `/metrics` (registered with anmei.common.metrics by JobsConfig)."""

from __future__ import annotations

import logging

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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
    yield failed
    yield resent
    yield lost


def queue_work_figures():
    """Per queue: the work an autoscaler scales on (anmei.jobs.queue_work), with its parts."""
    from django.conf import settings

    families = {
        "total": GaugeMetricFamily(
            "anmei_queue_work",
            "Units of work per Celery queue: messages waiting + reserved by workers (due) + due or running "
            "jobs no message stands for (the autoscaling signal)",
            labels=["queue"],
        ),
        "reserved": GaugeMetricFamily(
            "anmei_queue_reserved", "Due messages held by workers (prefetched or running), per queue", labels=["queue"]
        ),
        "unsent_jobs": GaugeMetricFamily(
            "anmei_queue_unsent_jobs",
            "Due or running jobs that no broker message stands for, per queue",
            labels=["queue"],
        ),
        "oldest_due_seconds": GaugeMetricFamily(
            "anmei_queue_oldest_due_seconds",
            "How long the longest-waiting due job has waited, per queue",
            labels=["queue"],
        ),
    }
    try:
        import redis

        from anmei.jobs.queue_work import queue_work_counts

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=2)
        try:
            counts = queue_work_counts(client)
        finally:
            client.close()
        for queue, work in sorted(counts.items()):
            families["total"].add_metric([queue], float(work.total))
            families["reserved"].add_metric([queue], float(work.reserved))
            families["unsent_jobs"].add_metric([queue], float(work.unsent_jobs))
            families["oldest_due_seconds"].add_metric([queue], work.oldest_due_seconds)
    except Exception:  # noqa: BLE001 - an outage must not break the scrape (the figure is then absent)
        logger.warning("metrics: queue work unavailable", exc_info=True)
    yield from families.values()
