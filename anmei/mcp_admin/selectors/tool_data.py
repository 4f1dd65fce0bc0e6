"""The data behind the four MCP tools, always read within one tenant.

Each function takes `tenant_id` (from the calling key's group) and, when the call carries a
subject token, `subject_customer_id`; an id outside the tenant, or another customer than the
subject, raises CallRefused exactly like an unknown id, so nothing leaks about other tenants.
Results are plain JSON-able dicts (the tools' structured content).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import Count, Max
from django.utils import timezone

from anmei.accounts.models import User
from anmei.conversations.models import Conversation, Message
from anmei.mcp_admin.selectors.access import CallRefused
from anmei.stats.services.terms import words_of

NEW_USER_WINDOW = timedelta(days=1)
_KEYWORD_SAMPLE = 500
_CONTENT_MAX_CHARS = 2000


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _mask_phone(phone: str) -> str:
    return phone[:3] + "*" * max(len(phone) - 7, 0) + phone[-4:] if len(phone) >= 8 else ("*" * len(phone))


def _customer(tenant_id: int, user_id: int, subject_customer_id: int | None) -> User:
    if subject_customer_id is not None and user_id != subject_customer_id:
        raise CallRefused("subject_mismatch", "this call is bound to another customer")
    user = User.objects.filter(pk=user_id, tenant_id=tenant_id, role=User.Role.CUSTOMER).first()
    if user is None:
        raise CallRefused("not_found", f"no customer with id {user_id}")
    return user


def _profile_sql() -> str:
    users, conversations = User._meta.db_table, Conversation._meta.db_table
    count = f"SELECT COUNT(*) FROM {conversations} c WHERE c.customer_id = u.id AND c.tenant_id = %s"
    return (
        f"SELECT u.id, u.username, u.nickname, u.email, u.phone, u.created_at, u.source, u.role, "
        f"({count}), ({count} AND c.status <> %s) "
        f"FROM {users} u WHERE u.id = %s AND u.tenant_id = %s AND u.role = %s"
    )


def customer_profile(*, tenant_id: int, user_id: int, subject_customer_id: int | None = None) -> dict[str, Any]:
    """Seed 000 §4.3.1's profile (id, username, email, registration time, roles, new or not, source)
    plus nickname, masked phone and conversation counts.

    One hand-written query: this is the agents' hot path (every welcome message reads it), and
    the ORM's query building cost several times the query itself (bench/mcp_latency.py).
    """
    if subject_customer_id is not None and user_id != subject_customer_id:
        raise CallRefused("subject_mismatch", "this call is bound to another customer")
    with connection.cursor() as cursor:
        cursor.execute(
            _profile_sql(),
            [tenant_id, tenant_id, Conversation.Status.ENDED, user_id, tenant_id, User.Role.CUSTOMER],
        )
        row = cursor.fetchone()
    if row is None:
        raise CallRefused("not_found", f"no customer with id {user_id}")
    pk, username, nickname, email, phone, created_at, source, role, total, open_count = row
    if isinstance(created_at, str):  # SQLite without type detection
        created_at = datetime.fromisoformat(created_at)
    if timezone.is_naive(created_at):
        created_at = timezone.make_aware(created_at, UTC)
    return {
        "user_id": pk,
        "username": username,
        "nickname": nickname,
        "display_name": nickname or username,
        "email": email,
        "phone": _mask_phone(phone),
        "registration_time": _iso(created_at),
        "roles": [role],
        "is_new_user": created_at >= timezone.now() - NEW_USER_WINDOW,
        "source": source,
        "conversation_count": total,
        "open_conversation_count": open_count,
    }


def _keywords(texts: list[str], top: int = 10) -> list[dict[str, Any]]:
    """The words a customer talks about, counted by the messages that use them.

    Words are cut by the same jieba tokenizer, clinic dictionary and stop words as the statistics'
    hot words (anmei.stats.services.terms), so 玻尿酸 and 热玛吉 come out whole, never as bigrams.
    """
    counter: Counter[str] = Counter()
    for text in texts:
        counter.update(words_of(text))
    ranked = sorted(counter.items(), key=lambda item: (-item[1], item[0]))
    return [{"keyword": word, "count": count} for word, count in ranked[:top]]


def customer_analysis(*, tenant_id: int, user_id: int, subject_customer_id: int | None = None) -> dict[str, Any]:
    """What a consultant wants before answering: how often they came, new or returning, when last
    active, what they talk about, and which of their conversations are still open."""
    user = _customer(tenant_id, user_id, subject_customer_id)
    conversations = list(
        Conversation.objects.filter(tenant_id=tenant_id, customer_id=user.pk)
        .select_related("consultant")
        .order_by("-created_at", "-id")
    )
    own_messages = Message.objects.filter(
        tenant_id=tenant_id, conversation__customer_id=user.pk, sender_type=Message.SenderType.CUSTOMER
    )
    stats = own_messages.aggregate(count=Count("id"), last=Max("created_at"))
    texts = list(
        own_messages.filter(type=Message.Type.TEXT)
        .order_by("-created_at", "-id")
        .values_list("content", flat=True)[:_KEYWORD_SAMPLE]
    )
    active_days = own_messages.datetimes("created_at", "day").count() if stats["count"] else 0
    visit_count = len(conversations)
    last_active = max(
        [d for d in [stats["last"], *(c.last_message_at for c in conversations)] if d], default=user.created_at
    )
    return {
        "user_id": user.pk,
        "nickname": user.nickname,
        "visit_count": visit_count,
        "customer_type": "returning" if visit_count > 1 or active_days > 1 else "new",
        "registered_at": _iso(user.created_at),
        "last_active_at": _iso(last_active),
        "message_count": stats["count"],
        "active_days": active_days,
        "top_keywords": _keywords(texts),
        "channels": sorted({c.channel for c in conversations}),
        "open_conversations": [
            {
                "conversation_id": c.pk,
                "status": c.status,
                "channel": c.channel,
                "consultant": c.consultant.display_name if c.consultant else None,
                "last_message_at": _iso(c.last_message_at),
            }
            for c in conversations
            if c.status != Conversation.Status.ENDED
        ],
    }


def conversation_data(
    *, tenant_id: int, conversation_id: int, limit: int = 20, subject_customer_id: int | None = None
) -> dict[str, Any]:
    """A conversation's status, customer, assigned consultant and its latest `limit` messages (oldest first)."""
    conversation = (
        Conversation.objects.filter(pk=conversation_id, tenant_id=tenant_id)
        .select_related("customer", "consultant")
        .first()
    )
    if conversation is None:
        raise CallRefused("not_found", f"no conversation with id {conversation_id}")
    if subject_customer_id is not None and conversation.customer_id != subject_customer_id:
        raise CallRefused("subject_mismatch", "this call is bound to another customer")
    latest = list(
        Message.objects.filter(tenant_id=tenant_id, conversation_id=conversation.pk).order_by("-created_at", "-id")[
            :limit
        ]
    )
    consultant = conversation.consultant
    return {
        "conversation_id": conversation.pk,
        "status": conversation.status,
        "channel": conversation.channel,
        "bot_name": conversation.bot_name,
        "customer": {"user_id": conversation.customer_id, "nickname": conversation.customer.nickname},
        "consultant": {"user_id": consultant.pk, "nickname": consultant.display_name} if consultant else None,
        "created_at": _iso(conversation.created_at),
        "last_message_at": _iso(conversation.last_message_at),
        "ended_at": _iso(conversation.ended_at),
        "message_count": Message.objects.filter(conversation_id=conversation.pk).count(),
        "messages": [
            {
                "id": m.pk,
                "sender_type": m.sender_type,
                "type": m.type,
                "content": m.content[:_CONTENT_MAX_CHARS],
                "created_at": _iso(m.created_at),
            }
            for m in reversed(latest)
        ],
    }


def business_metrics(*, tenant_id: int, days: int = 7) -> dict[str, Any]:
    """Registrations, conversations and registration-automation success for the last `days` days.

    Automation success is measured by its outcome, from data every deployment has: a customer
    registered in the window counts as served when their default conversation holds a bot
    welcome message.
    """
    now = timezone.now()
    since = now - timedelta(days=days)
    customers = User.objects.filter(tenant_id=tenant_id, role=User.Role.CUSTOMER, created_at__gte=since)
    registrations = customers.count()
    welcomed = (
        customers.filter(conversations__is_default=True, conversations__messages__sender_type=Message.SenderType.BOT)
        .distinct()
        .count()
    )
    conversations = Conversation.objects.filter(tenant_id=tenant_id, created_at__gte=since)
    by_status = {row["status"]: row["n"] for row in conversations.values("status").annotate(n=Count("id"))}
    by_channel = {row["channel"]: row["n"] for row in conversations.values("channel").annotate(n=Count("id"))}
    messages = Message.objects.filter(tenant_id=tenant_id, created_at__gte=since)
    by_sender = {row["sender_type"]: row["n"] for row in messages.values("sender_type").annotate(n=Count("id"))}
    return {
        "statistics": _rolled_up_statistics(tenant_id=tenant_id, days=days, now=now),
        "days": days,
        "since": _iso(since),
        "until": _iso(now),
        "registrations": registrations,
        "conversations": sum(by_status.values()),
        "conversations_by_status": by_status,
        "conversations_by_channel": by_channel,
        "messages": sum(by_sender.values()),
        "messages_by_sender": by_sender,
        "active_customers": messages.filter(sender_type=Message.SenderType.CUSTOMER)
        .values("conversation__customer_id")
        .distinct()
        .count(),
        "automation": {
            "registrations": registrations,
            "welcomed": welcomed,
            "success_rate": round(welcomed / registrations, 4) if registrations else None,
        },
    }


def _rolled_up_statistics(*, tenant_id: int, days: int, now: datetime) -> dict[str, Any]:
    """The statistics rollups of the last `days` local days (up to `as_of`): the figures the stats page shows."""
    from anmei.stats.selectors import stats_overview
    from anmei.stats.services.rollup import tenant_zone

    today = now.astimezone(tenant_zone(tenant_id)).date()
    overview = stats_overview(tenant_ids=[tenant_id], day_from=today - timedelta(days=days - 1), day_to=today, top=10)
    keep = ("customers", "conversations", "one_time_resolution_rate", "first_response", "handle_time", "csat")
    return {
        "from": (today - timedelta(days=days - 1)).isoformat(),
        "to": today.isoformat(),
        **{key: overview[key] for key in keep},
        "bot": overview["bot"],
        "channels": overview["channels"],
        "hot_words": overview["hot_words"],
        "consultants": overview["consultants"],
        "as_of": overview["as_of"],
    }
