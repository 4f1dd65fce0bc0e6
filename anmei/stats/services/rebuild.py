"""Reporting events, derived from the conversation tables (conversation events, messages, ratings).

The conversation app knows nothing of statistics (it sits below stats): every rollup first derives
the events of the conversations that started or changed in its window from what conversations
stored — claims, accepts and ends (ConversationEvent), messages — and stores those whose key is
missing (existing events are never touched). Ratings are stats' own and are also written as they
happen (`ratings.py`). `stats_backfill` re-rolls whole past ranges the same way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from anmei.conversations.models import Conversation, ConversationEvent, Message
from anmei.stats.models import Rating, ReportingEvent

K = ReportingEvent.Kind
SENDER = Message.SenderType


def _is_bot_reply(message: dict[str, Any]) -> bool:
    return message["sender_type"] == SENDER.BOT and (message["payload"] or {}).get("kind") != "welcome"


def _conversation_events(conversation: Conversation, transitions: list, messages: list, rating) -> list[dict]:
    common = {"conversation_id": conversation.id, "channel": conversation.channel}
    out: list[dict] = []
    claim = next((t for t in transitions if t.action == "claim"), None)
    handoff_at = None
    if claim is not None:
        at = claim.created_at
        handoff = any(_is_bot_reply(m) and m["created_at"] <= at for m in messages)
        out.append(
            {
                **common,
                "kind": K.CLAIM,
                "key": f"claim:{conversation.id}",
                "consultant_id": claim.actor_id,
                "occurred_at": at,
                "value_s": max((at - conversation.created_at).total_seconds(), 0.0),
                "data": {"handoff": handoff},
            }
        )
        if handoff:
            handoff_at = at
            out.append(
                {**common, "kind": K.HANDOFF, "key": f"handoff:{conversation.id}", "consultant_id": claim.actor_id,
                 "occurred_at": at}
            )  # fmt: skip
    for t in transitions:
        if t.action == "accept":
            out.append(
                {
                    **common,
                    "kind": K.TRANSFER,
                    "key": f"transfer:{conversation.id}:{t.created_at.timestamp():.6f}",
                    "consultant_id": t.details.get("from_consultant"),
                    "occurred_at": t.created_at,
                    "data": {"to_consultant": t.details.get("to_consultant")},
                }
            )
    last_human = None
    waiting_since = None
    for m in messages:
        if m["sender_type"] == SENDER.CUSTOMER and waiting_since is None:
            waiting_since = m["created_at"]
        elif _is_bot_reply(m) and (m["payload"] or {}).get("auto_reply"):
            payload = m["payload"] or {}
            out.append(
                {
                    **common,
                    "kind": K.BOT_REPLY,
                    "key": f"bot_reply:{m['id']}",
                    "occurred_at": m["created_at"],
                    "data": {"source": payload.get("source", ""), "keyword": payload.get("keyword", "")},
                }
            )
        elif m["sender_type"] == SENDER.CONSULTANT:
            mine = {**common, "consultant_id": m["sender_id"], "occurred_at": m["created_at"]}
            if last_human is None:
                start = handoff_at or conversation.created_at
                out.append(
                    {**mine, "kind": K.FIRST_RESPONSE, "key": f"first_response:{conversation.id}",
                     "value_s": max((m["created_at"] - start).total_seconds(), 0.0)}
                )  # fmt: skip
            if waiting_since is not None:
                out.append(
                    {**mine, "kind": K.REPLY, "key": f"reply:{m['id']}",
                     "value_s": max((m["created_at"] - waiting_since).total_seconds(), 0.0)}
                )  # fmt: skip
            last_human, waiting_since = m["created_at"], None
    end = next((t for t in transitions if t.action in ("end", "timeout")), None)
    if end is not None and conversation.ended_at:
        value = (conversation.ended_at - claim.created_at).total_seconds() if claim else None
        out.append(
            {**common, "kind": K.RESOLUTION, "key": f"resolution:{conversation.id}",
             "consultant_id": conversation.consultant_id, "occurred_at": conversation.ended_at,
             "value_s": max(value, 0.0) if value is not None else None}
        )  # fmt: skip
    if rating is not None:
        out.append(
            {**common, "kind": K.RATING, "key": f"rating:{conversation.id}",
             "consultant_id": conversation.consultant_id, "occurred_at": rating.created_at,
             "value_s": float(rating.score)}
        )  # fmt: skip
    return out


def conversations_touched(*, tenant_id: int, start: datetime, end: datetime) -> set[int]:
    """Ids of the conversations that started, got a message or changed state in [start, end)."""
    window = {"tenant_id": tenant_id, "created_at__gte": start, "created_at__lt": end}
    ids = set(Conversation.objects.filter(**window).values_list("id", flat=True))
    for model in (Message, ConversationEvent):
        ids |= set(model.objects.filter(**window).values_list("conversation_id", flat=True).distinct().order_by())
    return ids


def reporting_events_derive(*, tenant_id: int, start: datetime, end: datetime) -> int:
    """Store the missing events of the conversations touched in [start, end) (a rollup's window);
    return how many were added."""
    return reporting_events_store(
        tenant_id=tenant_id, conversation_ids=conversations_touched(tenant_id=tenant_id, start=start, end=end)
    )


def reporting_events_store(*, tenant_id: int, conversation_ids: set[int]) -> int:
    """Derive the events of these conversations and store the ones whose key is missing."""
    conversations = list(
        Conversation.objects.filter(tenant_id=tenant_id, id__in=conversation_ids).only(
            "id", "channel", "consultant_id", "created_at", "ended_at"
        )
    )
    if not conversations:
        return 0
    ids = [c.id for c in conversations]
    transitions: dict[int, list] = {i: [] for i in ids}
    for t in (
        ConversationEvent.objects.filter(conversation_id__in=ids)
        .only("conversation_id", "actor_id", "action", "details", "created_at")
        .order_by("created_at", "id")
    ):
        transitions[t.conversation_id].append(t)
    messages: dict[int, list] = {i: [] for i in ids}
    for m in (
        Message.objects.filter(conversation_id__in=ids, is_blocked=False)
        .order_by("id")
        .values("id", "conversation_id", "sender_type", "sender_id", "payload", "created_at")
    ):
        messages[m["conversation_id"]].append(m)
    ratings = {r.conversation_id: r for r in Rating.objects.filter(conversation_id__in=ids)}
    existing = set(
        ReportingEvent.objects.filter(tenant_id=tenant_id, conversation_id__in=ids).values_list("key", flat=True)
    )
    missing = [
        ReportingEvent(tenant_id=tenant_id, **event)
        for c in conversations
        for event in _conversation_events(c, transitions[c.id], messages[c.id], ratings.get(c.id))
        if event["key"] not in existing
    ]
    ReportingEvent.objects.bulk_create(missing, ignore_conflicts=True, batch_size=2000)
    return len(missing)
