"""Statistics writes: reporting events, ratings, rollups, hot words (docs/metrics.md)."""
