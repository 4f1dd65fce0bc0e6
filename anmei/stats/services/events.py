"""Reporting events, written after commit by the services that cause them (never from signals).

Each call is a few lines in the causing service: `transaction.on_commit(lambda: stats_event_...(...))`.
Idempotent by the unique (tenant, key): a repeat (a retried request, a redelivered task) is a no-op.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from anmei.stats.models import ReportingEvent

logger = logging.getLogger("anmei.stats")

K = ReportingEvent.Kind


def reporting_event_record(
    *,
    tenant_id: int,
    kind: str,
    key: str,
    conversation_id: int,
    occurred_at: datetime,
    consultant_id: int | None = None,
    channel: str = "",
    value_s: float | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Store one event unless its key is already there; return whether it was stored now."""
    _, created = ReportingEvent.objects.get_or_create(
        tenant_id=tenant_id,
        key=key,
        defaults={
            "kind": kind,
            "conversation_id": conversation_id,
            "consultant_id": consultant_id,
            "channel": channel,
            "value_s": value_s,
            "data": data or {},
            "occurred_at": occurred_at,
        },
    )
    return created


def reporting_event_on_commit(**event: Any) -> None:
    def write() -> None:
        try:
            reporting_event_record(**event)
        except Exception:  # noqa: BLE001 - statistics never fail the cause; `stats_backfill --events` rebuilds it
            logger.exception("reporting event not stored", extra={"tenant_id": event["tenant_id"], "key": event["key"]})

    transaction.on_commit(write)


def stats_on_claim(conversation) -> None:
    """A consultant claimed a waiting conversation: claim time, and a hand-off if the bot had answered."""
    from anmei.conversations.models import Message

    now = conversation.updated_at or timezone.now()
    bot_answered = (
        Message.objects.filter(conversation_id=conversation.id, sender_type=Message.SenderType.BOT, created_at__lte=now)
        .exclude(
            payload__has_key="kind", payload__kind="welcome"
        )  # the registration welcome is not the bot serving the customer
        .exists()
    )
    common = {
        "tenant_id": conversation.tenant_id,
        "conversation_id": conversation.id,
        "consultant_id": conversation.consultant_id,
        "channel": conversation.channel,
        "occurred_at": now,
    }
    value = max((now - conversation.created_at).total_seconds(), 0.0)
    reporting_event_on_commit(
        kind=K.CLAIM, key=f"claim:{conversation.id}", value_s=value, data={"handoff": bot_answered}, **common
    )
    if bot_answered:
        reporting_event_on_commit(kind=K.HANDOFF, key=f"handoff:{conversation.id}", **common)


def stats_on_transfer_accepted(conversation, *, from_consultant_id: int | None) -> None:
    """A conversation moved from one consultant to another (the accept of a transfer)."""
    now = conversation.updated_at or timezone.now()
    reporting_event_on_commit(
        tenant_id=conversation.tenant_id,
        kind=K.TRANSFER,
        key=f"transfer:{conversation.id}:{now.timestamp():.6f}",
        conversation_id=conversation.id,
        consultant_id=from_consultant_id,
        channel=conversation.channel,
        occurred_at=now,
        data={"to_consultant": conversation.consultant_id},
    )


def stats_on_end(conversation) -> None:
    """The conversation ended: handling time (end − claim) and the bot/human split of its duration."""
    ended = conversation.ended_at or timezone.now()
    claimed_at = (
        ReportingEvent.objects.filter(tenant_id=conversation.tenant_id, key=f"claim:{conversation.id}")
        .values_list("occurred_at", flat=True)
        .first()
    )
    reporting_event_on_commit(
        tenant_id=conversation.tenant_id,
        kind=K.RESOLUTION,
        key=f"resolution:{conversation.id}",
        conversation_id=conversation.id,
        consultant_id=conversation.consultant_id,
        channel=conversation.channel,
        occurred_at=ended,
        value_s=max((ended - claimed_at).total_seconds(), 0.0) if claimed_at else None,
    )


def stats_on_human_message(message, conversation) -> None:
    """A consultant/admin wrote: the first response of the conversation, and/or a reply time."""
    from anmei.conversations.models import Message

    earlier = Message.objects.filter(conversation_id=conversation.id, is_blocked=False, id__lt=message.id)
    last_human = (
        earlier.filter(sender_type=Message.SenderType.CONSULTANT).order_by("-id").values_list("created_at", flat=True)
    ).first()
    common = {
        "tenant_id": conversation.tenant_id,
        "conversation_id": conversation.id,
        "consultant_id": message.sender_id,
        "channel": conversation.channel,
        "occurred_at": message.created_at,
    }
    if last_human is None:
        handoff = (
            ReportingEvent.objects.filter(tenant_id=conversation.tenant_id, key=f"handoff:{conversation.id}")
            .values_list("occurred_at", flat=True)
            .first()
        )
        start = handoff or conversation.created_at
        value = max((message.created_at - start).total_seconds(), 0.0)
        reporting_event_on_commit(
            kind=K.FIRST_RESPONSE, key=f"first_response:{conversation.id}", value_s=value, **common
        )
    waiting = earlier.filter(sender_type=Message.SenderType.CUSTOMER)
    if last_human is not None:
        waiting = waiting.filter(created_at__gt=last_human)
    since = waiting.order_by("id").values_list("created_at", flat=True).first()
    if since is not None:
        value = max((message.created_at - since).total_seconds(), 0.0)
        reporting_event_on_commit(kind=K.REPLY, key=f"reply:{message.id}", value_s=value, **common)


def stats_on_bot_reply(reply, conversation) -> None:
    """The bot answered a customer (auto-reply): counted, and its keyword when a rule chose it."""
    reporting_event_on_commit(
        tenant_id=conversation.tenant_id,
        kind=K.BOT_REPLY,
        key=f"bot_reply:{reply.id}",
        conversation_id=conversation.id,
        channel=conversation.channel,
        occurred_at=reply.created_at,
        data={"source": reply.payload.get("source", ""), "keyword": reply.payload.get("keyword", "")},
    )
