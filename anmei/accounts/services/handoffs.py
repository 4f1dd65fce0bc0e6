"""Hand-offs written in the causing transaction: registration automation, lockout notices."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from anmei.accounts.models import User
from anmei.jobs.models import Job
from anmei.jobs.services import job_schedule

logger = logging.getLogger("anmei.accounts")


REGISTRATION_JOB = {"kind": "automation.start", "task": "workers.registration.start"}


def registration_hand_off(*, customer: User) -> Job | None:
    """A new customer's registration automation (welcome, default conversation, consultants told).

    Call inside the transaction that creates the customer (web sign-up here, a bot's first message
    of a new IM customer in anmei.bots): a durable job (anmei.jobs) that commits with them and
    names the automation's task — automation sits above accounts and reads it, so accounts hands
    the work over by task name instead of importing it. The task starts the run (or does nothing
    where the tenant has automation off); one job per customer.
    """
    if customer.role != User.Role.CUSTOMER or not customer.tenant_id:
        return None
    return job_schedule(
        **REGISTRATION_JOB,
        key=f"customer:{customer.id}",
        tenant_id=customer.tenant_id,
        payload={"customer_id": customer.id},
        lease_seconds=settings.AUTOMATION_STEP_LEASE_SECONDS,
    )


ACCOUNT_LOCKOUT_JOB = {"kind": "accounts.lockout_notice", "task": "workers.notifications.account_lockout"}


def account_lockout_hand_off(*, account: dict, episode_key: str) -> Job | None:
    """Tell the holder that a login limit of their account tripped: once per episode.

    Called by the login doors' account throttles (anmei.accounts.throttling). The first refusal marks an episode in
    the cache (ACCOUNT_LOCKOUT_EPISODE_SECONDS, atomic add); only that request looks the account up
    and writes the notice's durable job, in its own short transaction, naming the notifications
    task (notifications sits above accounts). The key names the episode, so a repeat is a no-op.
    Runs inside a request that answers 429: nothing here may turn it into a 500, so any failure
    is logged (and the mark dropped, for the next refusal to try again).
    """
    from django.core.cache import cache

    started = int(timezone.now().timestamp())
    try:
        if not cache.add(episode_key, started, timeout=settings.ACCOUNT_LOCKOUT_EPISODE_SECONDS):
            return None  # this episode's holder was told already
    except Exception:  # noqa: BLE001 - the cache is down: the 429 stands, nobody is told now
        logger.warning("account lock-out episode not recorded", exc_info=True)
        return None
    try:
        if "user_id" in account:
            user = User.objects.filter(pk=account["user_id"], is_active=True).first()
        else:
            user = User.objects.filter(
                tenant__slug__iexact=account["tenant"], username__iexact=account["username"], is_active=True
            ).first()
        if user is None or not user.tenant_id:
            return None  # no such account (or an operator: no tenant inbox); the mark stays
        with transaction.atomic():
            job = job_schedule(
                **ACCOUNT_LOCKOUT_JOB,
                key=f"user:{user.id}:{started}",
                tenant_id=user.tenant_id,
                payload={"user_id": user.id, "episode": started},
            )
    except Exception:  # noqa: BLE001 - the database is down: log it, answer the 429 anyway
        logger.exception("account lock-out notice not recorded")
        try:
            cache.delete(episode_key)
        except Exception:  # noqa: BLE001
            pass
        return None
    logger.info("account lock-out notice scheduled", extra={"tenant_id": user.tenant_id, "user_id": user.id})
    return job
