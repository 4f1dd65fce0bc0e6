"""Blacklist writes: versioned changes, signed incremental pushes to every bot, expiry, interceptions.

Every change (one entry or a whole batch) takes the tenant's next version under a row lock and is
recorded as one BlacklistChange with one durable push job per active bot (anmei.jobs), written in
the same transaction; the job's task sends, in version order, every change that bot has not
acknowledged. A batch is therefore one push per bot.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from anmei.accounts.models import User
from anmei.blacklist.models import (
    BlacklistBotCursor,
    BlacklistChange,
    BlacklistEntry,
    BlacklistInterception,
    BlacklistState,
    InterceptionReport,
)
from anmei.common.errors import ConflictError
from anmei.jobs.models import Job
from anmei.jobs.services import job_reschedule, job_schedule

logger = logging.getLogger("anmei.blacklist")

PUSH_PATH = "/astrbot-api/v1/config/update"
DUE_TOLERANCE = timedelta(milliseconds=100)
PUSH_KIND = "blacklist.push"
CLAIM_WAIT_SECONDS = 1.0  # another task is pushing to the bot: look again after this


def _entry_data(entry: BlacklistEntry) -> dict[str, Any]:
    return {
        "platform": entry.platform,
        "user_id": entry.platform_user_id,
        "reason": entry.reason,
        "expires_at": entry.expires_at.isoformat() if entry.expires_at else None,
    }


def _record_change(*, tenant_id: int, action: str, entries: list[dict[str, Any]], reason: str) -> BlacklistChange:
    """Take the next version (row lock) and schedule one push per active bot after commit."""
    from anmei.bots.models import BotInstance

    BlacklistState.objects.get_or_create(tenant_id=tenant_id)
    state = BlacklistState.objects.select_for_update().get(tenant_id=tenant_id)
    state.version += 1
    state.save(update_fields=["version"])
    change = BlacklistChange.objects.create(
        tenant_id=tenant_id, version=state.version, action=action, data={"entries": entries}, reason=reason
    )
    bot_ids = list(
        BotInstance.objects.filter(tenant_id=tenant_id, status=BotInstance.Status.ACTIVE).values_list("id", flat=True)
    )
    for bot_id in bot_ids:  # durable: the jobs commit with the change, and are published after it
        blacklist_push_schedule(tenant_id=tenant_id, bot_id=bot_id, version=change.version)
    logger.info(
        "blacklist changed",
        extra={
            "tenant_id": tenant_id,
            "version": change.version,
            "action": action,
            "entries": len(entries),
            "reason": reason,
            "bots": len(bot_ids),
        },
    )
    return change


def blacklist_push_schedule(*, tenant_id: int, bot_id: int, version: int) -> Job:
    """The durable job that brings one bot up to `version` (one per bot and version; idempotent)."""
    return job_schedule(
        kind=PUSH_KIND,
        key=f"bot:{bot_id}:v{version}",
        task="workers.blacklist.push_to_bot",
        tenant_id=tenant_id,
        payload={"bot_id": bot_id, "version": version},
        # the push decides its own retries (GatewaySettings countdowns, then alert and skip); the
        # job only needs room to wait for another task holding the bot, and for lost workers
        max_attempts=settings.BLACKLIST_PUSH_MAX_ATTEMPTS,
        lease_seconds=settings.BLACKLIST_PUSH_LEASE_SECONDS,
    )


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
    from anmei.blacklist.selectors import blacklist_version

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


def blacklist_push_lagging() -> int:
    """Schedule a push job for every active bot behind its tenant's version (beat).

    Jobs cover every change made while a bot was active; this catches a bot that was inactive
    (or had no cursor) when a change was made. Idempotent: one job per bot and version.
    """
    from anmei.bots.models import BotInstance

    now = timezone.now()
    versions = dict(BlacklistState.objects.values_list("tenant_id", "version"))
    lagging = [
        (cursor.bot.tenant_id, cursor.bot_id, versions[cursor.bot.tenant_id])
        for cursor in BlacklistBotCursor.objects.filter(bot__status=BotInstance.Status.ACTIVE).select_related("bot")
        if cursor.acknowledged_version < versions.get(cursor.bot.tenant_id, 0)
        and (cursor.next_attempt_at is None or cursor.next_attempt_at <= now)
    ]
    for tenant_id, bot_id, version in lagging:
        with transaction.atomic():
            job = blacklist_push_schedule(tenant_id=tenant_id, bot_id=bot_id, version=version)
        if job.state in (Job.State.DONE, Job.State.FAILED):  # that job ended yet the bot still lags
            job_reschedule(job_id=job.id)
    return len(lagging)


def blacklist_cursor_create(*, bot) -> BlacklistBotCursor:
    from anmei.blacklist.selectors import blacklist_version

    cursor, _ = BlacklistBotCursor.objects.get_or_create(
        bot=bot, defaults={"acknowledged_version": blacklist_version(tenant_id=bot.tenant_id)}
    )
    return cursor


def blacklist_push_pending(*, bot_id: int, claim_seconds: float | None = None) -> float | None:
    """Push, in version order, every change this bot has not acknowledged; return a retry countdown or None.

    One sender per bot: the task claims the bot's cursor with a conditional UPDATE (`claimed_until`,
    for `claim_seconds` — the job's lease — so a killed worker's claim runs out), never a row lock
    across the network. Each push is
    sent outside any transaction and its acknowledgement is committed on its own before the next
    one is sent, so a worker killed after a bot's 2xx does not send that change again. A failed
    version waits for its countdown (5/15/60 s from GatewaySettings); after the last one an
    AdminAlert is raised and the version is skipped — the bot sees the gap and re-pulls the full list.
    Another task holding the bot: returns a short countdown to look again.
    """
    from anmei.bots.models import BotInstance

    bot = BotInstance.objects.filter(pk=bot_id, status=BotInstance.Status.ACTIVE).first()
    if bot is None:
        return None
    blacklist_cursor_create(bot=bot)
    now = timezone.now()
    claim = now + timedelta(seconds=claim_seconds or settings.BLACKLIST_PUSH_LEASE_SECONDS)
    claimed = (
        BlacklistBotCursor.objects.filter(bot_id=bot_id)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .update(claimed_until=claim)
    )
    if not claimed:
        return CLAIM_WAIT_SECONDS
    try:
        return _push_claimed(bot)
    finally:
        BlacklistBotCursor.objects.filter(bot_id=bot_id, claimed_until=claim).update(claimed_until=None)


def _push_claimed(bot) -> float | None:
    from anmei.bots.selectors import gateway_settings_get
    from anmei.bots.services import signed_post
    from anmei.notifications.services import admin_alert_raise

    while True:
        cursor = BlacklistBotCursor.objects.get(bot_id=bot.id)
        change = (
            BlacklistChange.objects.filter(tenant_id=bot.tenant_id, version__gt=cursor.acknowledged_version)
            .order_by("version")
            .first()
        )
        if change is None:
            return None
        now = timezone.now()
        if cursor.next_attempt_at and cursor.next_attempt_at > now + DUE_TOLERANCE:
            return max((cursor.next_attempt_at - now).total_seconds(), 0.05)
        body = {"config_type": "blacklist", "action": change.action, "data": change.data, "version": change.version}
        error = signed_post(bot=bot, path=PUSH_PATH, payload=body)
        if not error:
            _advance(cursor, change.version, error="")  # committed before the next version is sent
            continue
        cursor.attempts += 1
        cursor.last_error = error
        countdowns = gateway_settings_get(tenant_id=bot.tenant_id).countdowns
        if cursor.attempts <= len(countdowns):
            countdown = float(countdowns[cursor.attempts - 1])
            cursor.next_attempt_at = now + timedelta(seconds=countdown)
            cursor.save(update_fields=["attempts", "last_error", "next_attempt_at"])
            logger.warning(
                "blacklist push failed, will retry",
                extra={
                    "tenant_id": bot.tenant_id,
                    "bot_id": bot.id,
                    "version": change.version,
                    "attempt": cursor.attempts,
                    "error": error,
                },
            )
            return countdown
        attempts = cursor.attempts
        _advance(cursor, change.version, error=error)  # skip first: the version gap tells the bot to re-pull
        admin_alert_raise(
            tenant_id=bot.tenant_id,
            source="blacklist_push",
            code="bot_unreachable",
            message=f"blacklist v{change.version} could not be pushed to bot '{bot.name}' after {attempts} attempts",
            dedupe_key=f"blacklist_push:{bot.id}:{change.version}",
            details={"bot_id": bot.id, "version": change.version, "last_error": error},
        )


def _advance(cursor: BlacklistBotCursor, version: int, *, error: str) -> None:
    cursor.acknowledged_version = version
    cursor.attempts = 0
    cursor.next_attempt_at = None
    cursor.last_error = error
    cursor.last_pushed_at = timezone.now()
    cursor.save(update_fields=["acknowledged_version", "attempts", "next_attempt_at", "last_error", "last_pushed_at"])


def interception_record(
    *,
    tenant_id: int,
    bot,
    platform: str,
    user_id: str,
    source: str,
    message_status: str = "",
    reported_at: datetime | None = None,
) -> None:
    """Count one blocked message for (platform, user) and keep the report for audit."""
    now = timezone.now()
    reason = (
        BlacklistEntry.objects.filter(tenant_id=tenant_id, platform=platform, platform_user_id=user_id)
        .values_list("reason", flat=True)
        .first()
        or ""
    )
    with transaction.atomic():
        InterceptionReport.objects.create(
            tenant_id=tenant_id,
            bot=bot,
            platform=platform,
            platform_user_id=user_id,
            source=source,
            message_status=message_status,
            reported_at=reported_at,
        )
        stat, _ = BlacklistInterception.objects.get_or_create(
            tenant_id=tenant_id, platform=platform, platform_user_id=user_id
        )
        BlacklistInterception.objects.filter(pk=stat.pk).update(
            count=F("count") + 1, last_blocked_at=now, last_source=source, last_reason=reason
        )
