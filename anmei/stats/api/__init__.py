"""Statistics doors: the figures (`figures`), CSAT ratings (`ratings`), blocked messages (`interceptions`)."""

from anmei.stats.api.figures import (
    FILTER_PARAMETERS,
    MAX_DAYS,
    MAX_HOUR_DAYS,
    StatsFilterSerializer,
    StatsOverviewApi,
    StatsOverviewSerializer,
    StatsTimeseriesApi,
)
from anmei.stats.api.interceptions import (
    BlacklistInterceptionListApi,
    InterceptionOutputSerializer,
    LocalDateRangeSerializer,
    local_range_bounds,
)
from anmei.stats.api.ratings import ConversationRatingApi

__all__ = [
    "FILTER_PARAMETERS",
    "MAX_DAYS",
    "MAX_HOUR_DAYS",
    "BlacklistInterceptionListApi",
    "ConversationRatingApi",
    "InterceptionOutputSerializer",
    "LocalDateRangeSerializer",
    "StatsFilterSerializer",
    "StatsOverviewApi",
    "StatsOverviewSerializer",
    "StatsTimeseriesApi",
    "local_range_bounds",
]
