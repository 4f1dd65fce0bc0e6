"""The additive figures of a rollup row: counters, and histograms kept as integer bucket columns."""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Any

# Histogram upper bounds in seconds; one more bucket holds everything above the last bound.
HIST_BOUNDS = [5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600, 900, 1200, 1800, 2700, 3600]
HIST_BOUNDS += [5400, 7200, 10800, 14400, 21600, 43200, 86400]
COUNTERS = [
    "conversations",
    "valid_conversations",
    "bot_only",
    "transferred",
    "ended",
    "resolved_once",
    "duration_sum_s",
    "bot_time_sum_s",
    "human_time_sum_s",
    "first_response_count",
    "first_response_sum_s",
    "handle_count",
    "handle_sum_s",
    "claims",
    "claim_sum_s",
    "new_customer_claims",
    "new_customer_claim_sum_s",
    "csat_count",
    "csat_sum",
    "transfers",
    "customer_messages",
    "human_messages",
    "bot_replies",
    "reply_count",
    "reply_sum_s",
]
HISTS = ["first_response_hist", "handle_hist"]
HIST_COLUMNS = {name: [f"{name.removesuffix('_hist')}_b{i:02d}" for i in range(len(HIST_BOUNDS) + 1)] for name in HISTS}
FIGURE_COLUMNS = COUNTERS + [column for columns in HIST_COLUMNS.values() for column in columns]
HOUR_COLUMNS = [f"cm_h{h:02d}" for h in range(24)]


def figures_to_columns(figures: dict[str, Any]) -> dict[str, Any]:
    """Counters as they are, histograms spread over their bucket columns."""
    columns = {name: figures[name] for name in COUNTERS}
    for name, names in HIST_COLUMNS.items():
        columns.update(zip(names, figures[name], strict=True))
    return columns


def columns_to_figures(row: dict[str, Any]) -> dict[str, Any]:
    """The inverse of figures_to_columns (None, as SQL SUM gives for no rows, reads as 0)."""
    figures = {name: row.get(name) or 0 for name in COUNTERS}
    for name, names in HIST_COLUMNS.items():
        figures[name] = [row.get(column) or 0 for column in names]
    return figures


def hist_add(hist: list[int], value: float) -> None:
    hist[bisect_left(HIST_BOUNDS, value)] += 1


def hist_merge(into: list[int], other: list[int]) -> None:
    for i, n in enumerate(other or []):
        into[i] += n


def hist_percentile(hist: list[int], q: float) -> float | None:
    """The upper bound of the first bucket where the cumulative count reaches q of the total."""
    total = sum(hist)
    if not total:
        return None
    rank, seen = math.ceil(q * total), 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= rank:
            return float(HIST_BOUNDS[i]) if i < len(HIST_BOUNDS) else None
    return None


def empty_figures() -> dict[str, Any]:
    figures: dict[str, Any] = dict.fromkeys(COUNTERS, 0)
    for name in HISTS:
        figures[name] = [0] * (len(HIST_BOUNDS) + 1)
    return figures
