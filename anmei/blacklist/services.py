"""Blacklist writes: versioned changes, expiry, interceptions.

Every change (one entry or a whole batch) takes the tenant's next version under a row lock and is
recorded as one BlacklistChange with one durable hand-off job (anmei.jobs), written in the same
transaction. The bot gateway runs it (`anmei.bots.services.blacklist_push`): one push job per
active bot, which sends, in version order, every change that bot has not acknowledged. A batch
is therefore one push per bot.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from anmei.accounts.models import User
from anmei.audit.services import audit_record
from anmei.blacklist.models import (
    BlacklistBotCursor,
    BlacklistChange,
    BlacklistEntry,
    BlacklistInterception,
    BlacklistState,
    InterceptionReport,
)
from anmei.blacklist.selectors import blacklist_version
from anmei.common.errors import ConflictError
from anmei.jobs.services import job_schedule

logger = logging.getLogger("anmei.blacklist")

CHANGE_JOB = {"kind": "blacklist.change", "task": "workers.blacklist.fan_out"}


def _entry_data(entry: BlacklistEntry) -> dict[str, Any]:
    return {
        "platform": entry.platform,
        "user_id": entry.platform_user_id,
        "reason": entry.reason,
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
    }


def _record_change(*, tenant_id: int, action: str, entries: list[dict[str, Any]], reason: str) -> BlacklistChange:
    """Take the next version (row lock) and hand the change to the bot gateway, in this transaction.

    The bots read the blacklist (inbound checks, their config), so blacklist hands the push over by
    task name: one durable job per change (`workers.blacklist.fan_out`) that schedules one push job
    per active bot of the tenant (`anmei.bots.services.blacklist_push`).
    """
    BlacklistState.objects.get_or_create(tenant_id=tenant_id)
    state = BlacklistState.objects.select_for_update().get(tenant_id=tenant_id)
    state.version += 1
    state.save(update_fields=["version"])
    change = BlacklistChange.objects.create(
        tenant_id=tenant_id, version=state.version, action=action, data={"entries": entries}, reason=reason
    )
    keys = [f"{e.get('platform')}:{e.get('user_id')}" for e in entries]
    audit_record(
        tenant_id=tenant_id,
        action=action if reason != "expiry" else "expire",
        object_type="blacklist_entry",
        object_id=keys[0] if len(keys) == 1 else f"{len(keys)} entries",
        changes={"entries": [None, entries] if action == "add" else [entries, None], "version": [None, state.version]},
    )
    job_schedule(
        **CHANGE_JOB,
        key=f"tenant:{tenant_id}:v{change.version}",
        tenant_id=tenant_id,
        payload={"version": change.version},
    )  # durable: commits with the change, published after it
    logger.info(
        "blacklist changed",
        extra={
            "tenant_id": tenant_id,
            "version": change.version,
            "action": action,
            "entries": len(entries),
            "reason": reason,
        },
    )
    return change


@transaction.atomic
def blacklist_entry_add(
    *,
    tenant_id: int,
    actor: User | None,
    platform: str,
    user_id: str,
    reason: str = "",
    expires_at: datetime | None = None,
) -> tuple[BlacklistEntry, int]:
    """Block one IM user; a second add of the same user is a 409 naming the existing entry."""
    try:
        with transaction.atomic():
            entry = BlacklistEntry.objects.create(
                tenant_id=tenant_id,
                platform=platform,
                platform_user_id=user_id,
                reason=reason,
                expires_at=expires_at,
                created_by=actor,
            )
    except IntegrityError as exc:
        existing = BlacklistEntry.objects.filter(
            tenant_id=tenant_id, platform=platform, platform_user_id=user_id
        ).first()
        raise ConflictError(
            "already_blacklisted",
            "this user is already on the blacklist",
            details={"id": existing.id if existing else None},
        ) from exc
    change = _record_change(tenant_id=tenant_id, action="add", entries=[_entry_data(entry)], reason="admin")
    return entry, change.version


@transaction.atomic
def blacklist_entry_remove(*, tenant_id: int, entry_id: int) -> int:
    from anmei.blacklist.selectors import blacklist_entry_get

    entry = blacklist_entry_get(tenant_id=tenant_id, entry_id=entry_id)
    data = {"platform": entry.platform, "user_id": entry.platform_user_id}
    deleted, _ = BlacklistEntry.objects.filter(pk=entry.pk).delete()
    if not deleted:  # removed concurrently: that removal already bumped the version
        from anmei.common.errors import NotFoundError

        raise NotFoundError("blacklist entry")
    return _record_change(tenant_id=tenant_id, action="remove", entries=[data], reason="admin").version


@transaction.atomic
def blacklist_entry_update(*, tenant_id: int, entry_id: int, reason: str, expires_at: datetime | None) -> int:
    """Change an entry's reason and expiry; the bots get it as a new version of that entry ("add")."""
    from anmei.blacklist.selectors import blacklist_entry_get

    entry = blacklist_entry_get(tenant_id=tenant_id, entry_id=entry_id)
    entry.reason, entry.expires_at = reason, expires_at
    entry.save(update_fields=["reason", "expires_at"])
    return _record_change(tenant_id=tenant_id, action="add", entries=[_entry_data(entry)], reason="admin").version


@transaction.atomic
def blacklist_batch_add(*, tenant_id: int, actor: User | None, entries: list[dict[str, Any]]) -> dict[str, int]:
    """Add or update many entries as one change (one version, one push per bot).

    One upsert statement (INSERT … ON CONFLICT DO UPDATE on the unique key), so a 1,000-entry batch
    costs a few queries, and a concurrent single add of the same user cannot make it fail.
    """
    by_key = {(item["platform"], item["user_id"]): item for item in entries}
    existing = set(
        BlacklistEntry.objects.filter(
            tenant_id=tenant_id, platform_user_id__in={user_id for _, user_id in by_key}
        ).values_list("platform", "platform_user_id")
    )
    rows = [
        BlacklistEntry(
            tenant_id=tenant_id,
            platform=platform,
            platform_user_id=user_id,
            reason=item.get("reason") or "",
            expires_at=item.get("expires_at"),
            created_by=actor,
        )
        for (platform, user_id), item in by_key.items()
    ]
    BlacklistEntry.objects.bulk_create(
        rows,
        batch_size=1000,
        update_conflicts=True,
        unique_fields=["tenant", "platform", "platform_user_id"],
        update_fields=["reason", "expires_at"],
    )
    updated = len(existing & set(by_key))
    pushed = [_entry_data(row) for row in rows]
    version = _record_change(tenant_id=tenant_id, action="add", entries=pushed, reason="batch").version
    return {"created": len(rows) - updated, "updated": updated, "version": version}


@transaction.atomic
def blacklist_batch_remove(*, tenant_id: int, entries: list[dict[str, Any]]) -> dict[str, int]:
    """Remove many entries as one change; entries not on the list are ignored, no-op batches push nothing."""
    wanted: dict[str, set[str]] = {}
    for item in entries:
        wanted.setdefault(item["platform"], set()).add(item["user_id"])
    removed: list[dict[str, Any]] = []
    for platform, user_ids in wanted.items():
        doomed = BlacklistEntry.objects.select_for_update().filter(
            tenant_id=tenant_id, platform=platform, platform_user_id__in=user_ids
        )
        found = sorted(doomed.values_list("platform_user_id", flat=True))
        BlacklistEntry.objects.filter(tenant_id=tenant_id, platform=platform, platform_user_id__in=found).delete()
        removed += [{"platform": platform, "user_id": user_id} for user_id in found]
    if not removed:
        return {"removed": 0, "version": blacklist_version(tenant_id=tenant_id)}
    version = _record_change(tenant_id=tenant_id, action="remove", entries=removed, reason="batch").version
    return {"removed": len(removed), "version": version}


def blacklist_expire(*, now: datetime | None = None) -> int:
    """Delete expired entries, one removal change per tenant (beat task body; idempotent)."""
    now = now or timezone.now()
    total = 0
    tenant_ids = set(BlacklistEntry.objects.filter(expires_at__lte=now).values_list("tenant_id", flat=True))
    for tenant_id in tenant_ids:
        with transaction.atomic():
            expired = list(BlacklistEntry.objects.select_for_update().filter(tenant_id=tenant_id, expires_at__lte=now))
            if not expired:
                continue
            BlacklistEntry.objects.filter(pk__in=[e.pk for e in expired]).delete()
            _record_change(
                tenant_id=tenant_id,
                action="remove",
                entries=[{"platform": e.platform, "user_id": e.platform_user_id} for e in expired],
                reason="expiry",
            )
            total += len(expired)
    return total


def blacklist_cursor_create(*, bot) -> BlacklistBotCursor:
    """A bot's push cursor, starting at the tenant's current version (a new bot gets the full list)."""
    cursor, _ = BlacklistBotCursor.objects.get_or_create(
        bot=bot, defaults={"acknowledged_version": blacklist_version(tenant_id=bot.tenant_id)}
    )
    return cursor


def interception_record(
    *,
    tenant_id: int,
    bot,
    platform: str,
    user_id: str,
    source: str,
    message_status: str = "",
    reported_at: datetime | None = None,
    external_id: str = "",
) -> bool:
    """Count one blocked message for (platform, user) and keep the report for audit.

    Returns False (and counts nothing) when `external_id` names a message already recorded: a bot
    re-sending a blocked message is one interception.
    """
    now = timezone.now()
    reason = (
        BlacklistEntry.objects.filter(tenant_id=tenant_id, platform=platform, platform_user_id=user_id)
        .values_list("reason", flat=True)
        .first()
        or ""
    )
    try:
        with transaction.atomic():
            InterceptionReport.objects.create(
                tenant_id=tenant_id,
                bot=bot,
                platform=platform,
                platform_user_id=user_id,
                source=source,
                message_status=message_status,
                reported_at=reported_at,
                external_id=external_id,
            )
            stat, _ = BlacklistInterception.objects.get_or_create(
                tenant_id=tenant_id, platform=platform, platform_user_id=user_id
            )
            BlacklistInterception.objects.filter(pk=stat.pk).update(
                count=F("count") + 1, last_blocked_at=now, last_source=source, last_reason=reason
            )
    except IntegrityError:
        if not external_id:
            raise
        return False
    return True
