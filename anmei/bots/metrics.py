"""The bots' scrape-time figures for `/metrics` (registered with anmei.common.metrics by BotsConfig)."""

from __future__ import annotations

import logging

from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger("anmei.metrics")


def bots_figures():
    """Active bot instances and the stale ones (no heartbeat within BOT_STALE_AFTER_SECONDS), per platform."""
    active = GaugeMetricFamily("anmei_bots_active", "Active bot instances, per platform", labels=["platform"])
    stale = GaugeMetricFamily(
        "anmei_bots_stale", "Active bot instances without a recent heartbeat, per platform", labels=["platform"]
    )
    try:
        from anmei.bots.selectors import bot_instances_liveness_counts

        for platform, counts in bot_instances_liveness_counts().items():
            active.add_metric([platform], float(counts["active"]))
            stale.add_metric([platform], float(counts["stale"]))
    except Exception:  # noqa: BLE001 - a database outage must not break the scrape
        logger.warning("metrics: bot liveness unavailable", exc_info=True)
    yield active
    yield stale
