"""Statistics reads: every figure comes from the rollup tables, never from raw messages.

Scope is a list of tenant ids (one for tenant staff; any for operators) plus optional consultant
and channel filters. Definitions: docs/metrics.md. Callers import from here; the modules are the
overview (`overview`), the series (`timeseries`), the row listings (`tables`), who may read what
(`access`) and a conversation's rating (`ratings`).
"""

from anmei.stats.selectors.access import stats_scope
from anmei.stats.selectors.overview import stats_overview
from anmei.stats.selectors.ratings import rating_get
from anmei.stats.selectors.tables import stats_daily_rows, stats_filter_choices, stats_tenant_comparison
from anmei.stats.selectors.timeseries import TIMESERIES_METRICS, stats_timeseries

__all__ = [
    "TIMESERIES_METRICS",
    "rating_get",
    "stats_daily_rows",
    "stats_filter_choices",
    "stats_overview",
    "stats_scope",
    "stats_tenant_comparison",
    "stats_timeseries",
]
