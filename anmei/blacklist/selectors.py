"""Blacklist reads, always scoped by tenant."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from anmei.blacklist.models import BlacklistEntry, BlacklistInterception, BlacklistState, InterceptionReport
from anmei.common.errors import NotFoundError


def _active(qs: QuerySet[BlacklistEntry], now=None) -> QuerySet[BlacklistEntry]:
    now = now or timezone.now()
    return qs.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def blacklist_is_blocked(*, tenant_id: int, platform: str, user_id: str) -> bool:
    """Is this IM user blocked right now (an expired entry no longer blocks, even before the sweep)?"""
    return _active(
        BlacklistEntry.objects.filter(tenant_id=tenant_id, platform=platform, platform_user_id=user_id)
    ).exists()


def blacklist_version(*, tenant_id: int) -> int:
    return BlacklistState.objects.filter(tenant_id=tenant_id).values_list("version", flat=True).first() or 0


def blacklist_entry_list(*, tenant_id: int, filters: dict[str, Any]) -> QuerySet[BlacklistEntry]:
    qs = BlacklistEntry.objects.filter(tenant_id=tenant_id).select_related("created_by")
    if filters.get("platform"):
        qs = qs.filter(platform=filters["platform"])
    if filters.get("q"):
        term = filters["q"]
        qs = qs.filter(Q(platform_user_id__icontains=term) | Q(reason__icontains=term))
    if filters.get("user_id"):
        qs = qs.filter(platform_user_id=filters["user_id"])
    if filters.get("expired") is True:
        qs = qs.filter(expires_at__lte=timezone.now())
    elif filters.get("expired") is False:
        qs = _active(qs)
    return qs.order_by("-created_at", "-id")


def blacklist_entry_get(*, tenant_id: int, entry_id: int) -> BlacklistEntry:
    entry = BlacklistEntry.objects.filter(tenant_id=tenant_id, pk=entry_id).first()
    if entry is None:
        raise NotFoundError("blacklist entry")
    return entry


def blacklist_snapshot(*, tenant_id: int) -> dict[str, Any]:
    """The full list a bot pulls at start, consistent with its version.

    The state row is locked for the read so that no change commits between reading the version
    and reading the entries.
    """
    with transaction.atomic():
        state = BlacklistState.objects.select_for_update().filter(tenant_id=tenant_id).first()
        rows = (
            _active(BlacklistEntry.objects.filter(tenant_id=tenant_id))
            .order_by("id")
            .values_list("platform", "platform_user_id", "reason", "expires_at")
        )
        entries = [
            {"platform": p, "user_id": u, "reason": r, "expires_at": e.isoformat() if e else None}
            for p, u, r, e in rows
        ]
    return {"version": state.version if state else 0, "entries": entries}


def interception_list(*, tenant_id: int) -> QuerySet[BlacklistInterception]:
    return BlacklistInterception.objects.filter(tenant_id=tenant_id).order_by("-last_blocked_at")


def interception_report_list(*, tenant_id: int, start=None, end=None) -> QuerySet[InterceptionReport]:
    """Blocked messages of the tenant, newest first, `start` <= created_at < `end` (UTC instants)."""
    qs = InterceptionReport.objects.filter(tenant_id=tenant_id)
    if start is not None:
        qs = qs.filter(created_at__gte=start)
    if end is not None:
        qs = qs.filter(created_at__lt=end)
    return qs.order_by("-created_at", "-id")
