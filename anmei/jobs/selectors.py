"""Reads over durable jobs: what is due, what is stuck, per pipeline."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils import timezone

from anmei.jobs.models import Job


def _stuck_filter(now, threshold_seconds: float) -> Q:
    before = now - timedelta(seconds=threshold_seconds)
    return Q(state=Job.State.PENDING, next_attempt_at__lt=before) | Q(state=Job.State.RUNNING, lease_until__lt=before)


def jobs_stuck_counts(*, tenant_id: int | None = None, threshold_seconds: float | None = None) -> dict[str, int]:
    """Jobs due for longer than the stuck threshold (or holding a long-expired lease), by kind.

    `tenant_id=None` counts every tenant (operators, the metrics gauge).
    """
    now = timezone.now()
    qs = Job.objects.filter(
        _stuck_filter(now, settings.JOBS_STUCK_AFTER_SECONDS if threshold_seconds is None else threshold_seconds)
    )
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return {row["kind"]: row["n"] for row in qs.values("kind").annotate(n=Count("id")).order_by("kind")}


def jobs_due_counts(*, tenant_id: int | None = None) -> dict[str, int]:
    """Jobs due now and not running (pending with a past due time), by kind."""
    qs = Job.objects.filter(state=Job.State.PENDING, next_attempt_at__lte=timezone.now())
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return {row["kind"]: row["n"] for row in qs.values("kind").annotate(n=Count("id")).order_by("kind")}


def jobs_stuck_groups(*, threshold_seconds: float | None = None) -> list[dict]:
    """Stuck jobs per (tenant, kind): count and the oldest stuck job's id (names the episode)."""
    from django.db.models import Min

    threshold = settings.JOBS_STUCK_AFTER_SECONDS if threshold_seconds is None else threshold_seconds
    return list(
        Job.objects.filter(_stuck_filter(timezone.now(), threshold))
        .values("tenant_id", "kind")
        .annotate(n=Count("id"), oldest=Min("id"))
        .order_by("tenant_id", "kind")
    )


def jobs_resend_totals() -> dict[str, tuple[int, int]]:
    """Per pipeline: (messages the sweep re-sent, of them provably lost), over the stored jobs."""
    rows = (
        Job.objects.filter(resent__gt=0)
        .values("kind")
        .annotate(resent_total=Sum("resent"), lost_total=Sum("lost"))
        .values_list("kind", "resent_total", "lost_total")
    )
    return {kind: (int(resent or 0), int(lost or 0)) for kind, resent, lost in rows}


def jobs_failed_counts(*, tenant_id: int | None = None) -> dict[str, int]:
    """Jobs that failed for good (retries exhausted or refused), by kind: what Flower cannot show.

    A job's task returns normally after recording the failure on the row, so Celery and Flower
    see a success; the row is the record.
    """
    qs = Job.objects.filter(state=Job.State.FAILED)
    if tenant_id is not None:
        qs = qs.filter(tenant_id=tenant_id)
    return {row["kind"]: row["n"] for row in qs.values("kind").annotate(n=Count("id")).order_by("kind")}
