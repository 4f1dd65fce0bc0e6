from __future__ import annotations

import base64
from datetime import datetime

from django.db.models import Q, QuerySet

from anmei.accounts.models import User
from anmei.common.errors import ApplicationError, NotFoundError
from anmei.conversations.models import Conversation, ConversationSettings, Message, RoutingSettings


def conversation_settings_get(*, tenant_id: int) -> ConversationSettings:
    """The tenant's conversation settings, or the unsaved defaults while it has no row (reads never write)."""
    return ConversationSettings.objects.filter(tenant_id=tenant_id).first() or ConversationSettings(tenant_id=tenant_id)


def conversation_visible_to(user: User) -> QuerySet[Conversation]:
    """Conversations a user may see: a customer their own, staff their tenant's, none across tenants."""
    qs = Conversation.objects.filter(tenant_id=user.tenant_id)
    if user.role == User.Role.CUSTOMER:
        qs = qs.filter(customer=user)
    elif user.role not in (User.Role.CONSULTANT, User.Role.ADMIN):
        qs = qs.none()
    return qs


def conversation_list(*, user: User, filters: dict) -> QuerySet[Conversation]:
    qs = conversation_visible_to(user).select_related("customer", "consultant")
    if filters.get("customer") is not None:
        qs = qs.filter(customer_id=filters["customer"])
    if filters.get("consultant") is not None:
        qs = qs.filter(consultant_id=filters["consultant"])
    if filters.get("status"):
        qs = qs.filter(status=filters["status"])
    if filters.get("channel"):
        qs = qs.filter(channel=filters["channel"])
    if filters.get("created_after"):
        qs = qs.filter(created_at__gte=filters["created_after"])
    if filters.get("created_before"):
        qs = qs.filter(created_at__lt=filters["created_before"])
    return qs.order_by("-updated_at", "-id")


def conversation_get(*, user: User, conversation_id: int) -> Conversation:
    conversation = conversation_visible_to(user).filter(pk=conversation_id).first()
    if conversation is None:
        raise NotFoundError("conversation")  # 404 for other tenants' ids too: no existence leak
    return conversation


def message_list(*, conversation: Conversation) -> QuerySet[Message]:
    return (
        Message.objects.filter(tenant_id=conversation.tenant_id, conversation=conversation)
        .select_related("sender", "conversation", "bot_delivery")
        .order_by("created_at", "id")
    )


def message_search(*, user: User, filters: dict) -> QuerySet[Message]:
    """Messages of the staff member's tenant matching every given filter, newest first.

    `q` is a case-insensitive substring match (PostgreSQL: a pg_trgm GIN index on UPPER(content)
    serves it, Chinese included); the caller pages with `message_search_page`.
    """
    qs = Message.objects.filter(tenant_id=user.tenant_id).select_related(
        "conversation", "conversation__customer", "bot_delivery"
    )
    if user.role not in (User.Role.CONSULTANT, User.Role.ADMIN):
        return qs.none()
    if filters.get("q"):
        qs = qs.filter(content__icontains=filters["q"])
    if filters.get("customer") is not None:
        qs = qs.filter(conversation__customer_id=filters["customer"])
    if filters.get("customer_nickname"):
        term = filters["customer_nickname"]
        qs = qs.filter(
            Q(conversation__customer__nickname__icontains=term) | Q(conversation__customer__username__icontains=term)
        )
    if filters.get("consultant") is not None:
        qs = qs.filter(conversation__consultant_id=filters["consultant"])
    if filters.get("type"):
        qs = qs.filter(type=filters["type"])
    if filters.get("sender_type"):
        qs = qs.filter(sender_type=filters["sender_type"])
    if filters.get("conversation") is not None:
        qs = qs.filter(conversation_id=filters["conversation"])
    if filters.get("after"):
        qs = qs.filter(created_at__gte=filters["after"])
    if filters.get("before"):
        qs = qs.filter(created_at__lt=filters["before"])
    if not filters.get("include_blocked"):
        qs = qs.filter(is_blocked=False)
    return qs.order_by("-created_at", "-id")


def _encode_cursor(created_at: datetime, pk: int) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{pk}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Parse a cursor from `message_search_page`; a tampered one is a 400, not a 500."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, pk = raw.rsplit("|", 1)
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None:
            raise ValueError("naive")
        return created_at, int(pk)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApplicationError("invalid_cursor", "cursor is not valid", details={"field": "cursor"}) from exc


def message_search_page(
    qs: QuerySet[Message], *, cursor: str | None, page_size: int
) -> tuple[list[Message], str | None]:
    """Keyset pagination on (created_at, id) descending: stable while new messages arrive."""
    if cursor:
        created_at, pk = decode_cursor(cursor)
        qs = qs.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=pk))
    rows = list(qs[: page_size + 1])
    next_cursor = None
    if len(rows) > page_size:
        rows = rows[:page_size]
        next_cursor = _encode_cursor(rows[-1].created_at, rows[-1].id)
    return rows, next_cursor


def routing_settings_get(*, tenant_id: int) -> RoutingSettings:
    """The tenant's routing settings, or the unsaved defaults while it has no row (reads never write)."""
    return RoutingSettings.objects.filter(tenant_id=tenant_id).first() or RoutingSettings(tenant_id=tenant_id)
