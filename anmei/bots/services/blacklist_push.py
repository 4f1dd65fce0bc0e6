"""Pushing blacklist changes to the bots (seed 002 §3.3): the bot gateway's side of a change.

A change (anmei.blacklist) commits with one hand-off job; its task (`workers.blacklist.fan_out`)
runs `blacklist_change_fan_out` here, which schedules one durable push job per active bot of the
tenant. Each push job sends, in version order, every change its bot has not acknowledged, with the
bot's claim taken by a conditional UPDATE (never a row lock across the network) and each
acknowledgement committed on its own.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from anmei.blacklist.models import BlacklistBotCursor, BlacklistChange, BlacklistState
from anmei.blacklist.services import blacklist_cursor_create
from anmei.bots.models import BotInstance
from anmei.bots.selectors import gateway_settings_get
from anmei.bots.services.instances import bot_heartbeat, signed_post
from anmei.jobs.models import Job
from anmei.jobs.services import job_reschedule, job_schedule
from anmei.notifications.services import admin_alert_raise

logger = logging.getLogger("anmei.bots")

PUSH_PATH = "/astrbot-api/v1/config/update"
DUE_TOLERANCE = timedelta(milliseconds=100)
PUSH_KIND = "blacklist.push"
CLAIM_WAIT_SECONDS = 1.0  # another task is pushing to the bot: look again after this


def blacklist_change_fan_out(*, tenant_id: int, version: int) -> int:
    """The hand-off job of a blacklist change: one push job per active bot of the tenant (idempotent)."""
    with transaction.atomic():
        bot_ids = list(
            BotInstance.objects.filter(tenant_id=tenant_id, status=BotInstance.Status.ACTIVE).values_list(
                "id", flat=True
            )
        )
        for bot_id in bot_ids:  # durable: the jobs commit together and are published after it
            blacklist_push_schedule(tenant_id=tenant_id, bot_id=bot_id, version=version)
    logger.info("blacklist change fanned out", extra={"tenant_id": tenant_id, "version": version, "bots": len(bot_ids)})
    return len(bot_ids)


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


def blacklist_push_lagging() -> int:
    """Schedule a push job for every active bot behind its tenant's version (beat).

    Jobs cover every change made while a bot was active; this catches a bot that was inactive
    (or had no cursor) when a change was made. Idempotent: one job per bot and version.
    """
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


def blacklist_push_pending(*, bot_id: int, claim_seconds: float | None = None) -> float | None:
    """Push, in version order, every change this bot has not acknowledged; return a retry countdown or None.

    One sender per bot: the task claims the bot's cursor with a conditional UPDATE (`claimed_until`,
    for `claim_seconds` — the job's lease — so a killed worker's claim runs out), never a row lock
    across the network. Each push is
    sent outside any transaction and its acknowledgement is committed on its own before the next
    one is sent, so a worker killed after a bot's 2xx does not send that change again. A failed
    version waits for its countdown (5/15/60 s from GatewaySettings); after the last one an
    AdminAlert is raised and the bot stays lagging (never marked as having what it did not get):
    the resync and the bot's return take it from there.
    Another task holding the bot: returns a short countdown to look again.
    """
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
        countdowns = gateway_settings_get(tenant_id=bot.tenant_id).countdowns
        if cursor.next_attempt_at and cursor.next_attempt_at > now + DUE_TOLERANCE:
            if cursor.attempts > len(countdowns):  # past the schedule: the resync (or the bot's return) owns it
                return None
            return max((cursor.next_attempt_at - now).total_seconds(), 0.05)
        body = {"config_type": "blacklist", "action": change.action, "data": change.data, "version": change.version}
        error = signed_post(bot=bot, path=PUSH_PATH, payload=body)
        if not error:
            _advance(cursor, change.version, error="")  # committed before the next version is sent
            continue
        cursor.attempts += 1
        cursor.last_error = error
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
        _lagging_backoff(bot, cursor, change.version, past=cursor.attempts - len(countdowns), now=now)
        return None


def _lagging_backoff(bot, cursor: BlacklistBotCursor, version: int, *, past: int, now) -> None:
    """The schedule is spent: the bot stays lagging at its acknowledged version, and the periodic
    resync (`blacklist_push_lagging`) tries again after a doubling backoff; the bot's return
    (`blacklist_bot_seen`) tries at once. The admins are told once per version."""
    backoff = min(
        settings.BLACKLIST_RESYNC_BACKOFF_SECONDS * 2 ** (past - 1), settings.BLACKLIST_RESYNC_MAX_BACKOFF_SECONDS
    )
    cursor.next_attempt_at = now + timedelta(seconds=backoff)
    cursor.save(update_fields=["attempts", "last_error", "next_attempt_at"])
    logger.warning(
        "blacklist push schedule spent, bot lagging",
        extra={"tenant_id": bot.tenant_id, "bot_id": bot.id, "version": version, "retry_in_s": backoff},
    )
    admin_alert_raise(
        tenant_id=bot.tenant_id,
        source="blacklist_push",
        code="bot_unreachable",
        message=f"blacklist v{version} could not be pushed to bot '{bot.name}'; retrying while it lags",
        dedupe_key=f"blacklist_push:{bot.id}:{version}",
        details={"bot_id": bot.id, "version": version, "last_error": cursor.last_error},
    )


def blacklist_bot_seen(*, bot: BotInstance) -> bool:
    """A lagging bot showed it is back (heartbeat, status, a pull): push to it now, once.

    Only a bot whose schedule is spent (waiting on the resync's backoff) is affected. The
    conditional UPDATE that ends its backoff decides which of several concurrent signs of life
    schedules the push, so a burst of heartbeats brings the bot up to date once.
    """
    countdowns = gateway_settings_get(tenant_id=bot.tenant_id).countdowns
    now = timezone.now()
    with transaction.atomic():
        woken = BlacklistBotCursor.objects.filter(
            bot_id=bot.id, next_attempt_at__gt=now, attempts__gt=len(countdowns)
        ).update(next_attempt_at=None, attempts=0)
        if not woken:
            return False
        version = BlacklistState.objects.filter(tenant_id=bot.tenant_id).values_list("version", flat=True).first()
        job = blacklist_push_schedule(tenant_id=bot.tenant_id, bot_id=bot.id, version=version or 0)
    if job.state in (Job.State.DONE, Job.State.FAILED):
        job_reschedule(job_id=job.id)
    logger.info("lagging bot is back, pushing", extra={"tenant_id": bot.tenant_id, "bot_id": bot.id})
    return True


def bot_heartbeat_record(*, bot: BotInstance, status: dict | None = None) -> BotInstance:
    """A heartbeat or status report: record liveness, and bring a lagging bot up to date."""
    bot = bot_heartbeat(bot=bot, status=status)
    blacklist_bot_seen(bot=bot)
    return bot


def _advance(cursor: BlacklistBotCursor, version: int, *, error: str) -> None:
    cursor.acknowledged_version = version
    cursor.attempts = 0
    cursor.next_attempt_at = None
    cursor.last_error = error
    cursor.last_pushed_at = timezone.now()
    cursor.save(update_fields=["acknowledged_version", "attempts", "next_attempt_at", "last_error", "last_pushed_at"])
