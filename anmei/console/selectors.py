"""Reads the console and the web chat need beyond the conversation API: resync, presence, side panel.

Every query is scoped by the caller's tenant (and, for customers, to their own conversations).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Q

from anmei.accounts.models import User
from anmei.bots.models import BotInstance
from anmei.common.errors import NotFoundError
from anmei.conversations.models import Conversation, ConversationEvent, Message
from anmei.conversations.selectors import conversation_visible_to

SYNC_LIMIT = 200
# Ids are handed out at INSERT, rows become visible at COMMIT: a message with a smaller id than the
# client's cursor can still appear a moment later. Resync therefore also returns everything created
# within this window before the cursor's message; the client drops the ids it already has.
SYNC_OVERLAP = timedelta(seconds=10)


def _since(qs, *, model, after_id: int):
    if after_id <= 0:
        return qs
    anchor = model.objects.filter(pk=after_id).values_list("created_at", flat=True).first()
    if anchor is None:
        return qs.filter(pk__gt=after_id)
    return qs.filter(Q(pk__gt=after_id) | Q(created_at__gte=anchor - SYNC_OVERLAP))


def _reachable_conversations(user: User):
    """What a live socket would have told this user about: theirs, waiting ones, an admin's tenant."""
    qs = conversation_visible_to(user)
    if user.role == User.Role.CONSULTANT:
        qs = qs.filter(Q(consultant=user) | Q(transfer_to=user) | Q(status=Conversation.Status.WAITING))
    return qs


def messages_since(*, user: User, after_id: int, limit: int = SYNC_LIMIT) -> tuple[list[Message], bool]:
    """Messages a reconnecting client may have missed, oldest first, and whether more remain."""
    qs = Message.objects.filter(
        tenant_id=user.tenant_id, conversation__in=_reachable_conversations(user), is_blocked=False
    ).select_related("conversation", "bot_delivery")
    rows = list(_since(qs, model=Message, after_id=after_id).order_by("id")[: limit + 1])
    return rows[:limit], len(rows) > limit


def conversation_events_since(
    *, user: User, after_id: int, limit: int = SYNC_LIMIT
) -> tuple[list[ConversationEvent], bool]:
    """Status changes (claimed, transferred, ended …) a reconnecting client may have missed."""
    qs = ConversationEvent.objects.filter(tenant_id=user.tenant_id, conversation__in=conversation_visible_to(user))
    rows = list(_since(qs, model=ConversationEvent, after_id=after_id).order_by("id")[: limit + 1])
    return rows[:limit], len(rows) > limit


def conversation_event_list(*, user: User, conversation_id: int) -> list[ConversationEvent]:
    """A conversation's status changes for its timeline (404 when the user may not see it)."""
    from anmei.conversations.selectors import conversation_get

    conversation = conversation_get(user=user, conversation_id=conversation_id)
    return list(
        ConversationEvent.objects.filter(tenant_id=conversation.tenant_id, conversation=conversation)
        .select_related("actor")
        .order_by("id")
    )


def staff_presence_list(*, tenant_id: int) -> list[dict[str, Any]]:
    """The tenant's consultants and admins with whether each is online now (the routing's view)."""
    from anmei.common.presence import online_user_ids

    online = online_user_ids(tenant_id=tenant_id, roles=("consultant", "admin"))
    staff = User.objects.filter(tenant_id=tenant_id, role__in=("consultant", "admin"), is_active=True).order_by("id")
    return [
        {
            "id": u.id,
            "username": u.username,
            "name": u.display_name,
            "role": u.role,
            "status": "online" if u.id in online else "offline",
        }
        for u in staff
    ]


def customer_profile_get(*, user: User, customer_id: int) -> dict[str, Any]:
    """The console's side panel: who the customer is, their conversations, their blacklist status."""
    from anmei.blacklist.models import BlacklistEntry

    customer = User.objects.filter(pk=customer_id, tenant_id=user.tenant_id, role=User.Role.CUSTOMER).first()
    if customer is None:
        raise NotFoundError("customer")
    conversations = Conversation.objects.filter(tenant_id=user.tenant_id, customer=customer).order_by("-created_at")
    blacklisted = None
    if customer.platform_user_id:
        from django.utils import timezone

        entry = (
            BlacklistEntry.objects.filter(
                tenant_id=user.tenant_id, platform=customer.source, platform_user_id=customer.platform_user_id
            )
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now()))
            .first()
        )
        if entry is not None:
            blacklisted = {"id": entry.id, "reason": entry.reason, "expires_at": entry.expires_at}
    bot_id = conversations.exclude(bot_instance_id=None).values_list("bot_instance_id", flat=True).first()
    bot = BotInstance.objects.filter(pk=bot_id, tenant_id=user.tenant_id).first() if bot_id else None
    return {
        "id": customer.id,
        "username": customer.username,
        "nickname": customer.nickname,
        "source": customer.source,
        "platform_user_id": customer.platform_user_id,
        "created_at": customer.created_at,
        "blacklisted": blacklisted,
        # the bot their IM messages come through, and whether it is alive (heartbeats)
        "bot": (
            {"name": bot.name, "is_stale": bot.is_stale, "last_heartbeat_at": bot.last_heartbeat_at}
            if bot is not None
            else None
        ),
        "conversations": [
            {
                "id": c.id,
                "status": c.status,
                "channel": c.channel,
                "created_at": c.created_at,
                "ended_at": c.ended_at,
            }
            for c in conversations[:20]
        ],
    }


def sync_cursor(*, user: User) -> dict[str, int]:
    """The newest message and event ids of the tenant: where a fresh tab starts listening."""
    from django.db.models import Max

    return {
        "message": Message.objects.filter(tenant_id=user.tenant_id).aggregate(m=Max("id"))["m"] or 0,
        "event": ConversationEvent.objects.filter(tenant_id=user.tenant_id).aggregate(m=Max("id"))["m"] or 0,
    }


def message_history(
    *, user: User, conversation_id: int, before_id: int | None, limit: int
) -> tuple[list[Message], bool]:
    """A conversation's messages just before `before_id` (or the newest), oldest first; more older ones?

    The chat views open at the bottom and page upward; blocked messages stay out of the chat.
    """
    from anmei.conversations.selectors import conversation_get, message_list

    conversation = conversation_get(user=user, conversation_id=conversation_id)
    qs = message_list(conversation=conversation).filter(is_blocked=False)
    if before_id is not None:
        qs = qs.filter(id__lt=before_id)
    rows = list(qs.order_by("-id")[: limit + 1])
    return list(reversed(rows[:limit])), len(rows) > limit


def last_messages(*, user: User, conversation_ids: list[int]) -> dict[int, Message]:
    """The newest visible message of each listed conversation the user may see (list previews)."""
    from django.db.models import Max

    latest = (
        conversation_visible_to(user)
        .filter(pk__in=conversation_ids)
        .annotate(last_id=Max("messages__id", filter=Q(messages__is_blocked=False)))
        .values_list("last_id", flat=True)
    )
    ids = [i for i in latest if i is not None]
    return {
        m.conversation_id: m
        for m in Message.objects.filter(tenant_id=user.tenant_id, pk__in=ids).select_related(
            "conversation", "bot_delivery"
        )
    }
