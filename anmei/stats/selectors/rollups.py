"""What every statistics read shares: the scope filter over a rollup table and the rounded average."""

from __future__ import annotations

from django.db.models import Q


def average(total: float, count: int, digits: int = 1) -> float | None:
    """`total / count` rounded (docs/metrics.md "Percentiles": averages are exact); None without values."""
    return round(total / count, digits) if count else None


def rollup_scope(model, *, tenant_ids: list[int] | None, consultant_id: int | None, channel: str | None) -> Q:
    """The rows of the tenants (None: every tenant), narrowed to a consultant and a channel when given."""
    q = Q()
    if tenant_ids is not None:
        q &= Q(tenant_id__in=tenant_ids)
    if consultant_id is not None:
        q &= Q(consultant_id=consultant_id)
    if channel:
        q &= Q(channel=channel)
    return q
