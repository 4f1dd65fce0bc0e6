"""The conversation state machine: waiting → active → transferring → active → ended.

Every transition locks the row (SELECT … FOR UPDATE on PostgreSQL) *and* writes with a conditional
UPDATE on the expected status, so among concurrent claims exactly one wins even on SQLite, where
row locks do not exist. Each change stores a ConversationEvent and, after commit, pushes
`conversation.updated` to the tenant's console (every screen that lists or shows the conversation
follows its status, whoever changed it) and to its customer.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from anmei.accounts.models import User
from anmei.common import realtime
from anmei.common.errors import ApplicationError, ConflictError, NotFoundError
from anmei.conversations.models import Conversation, ConversationEvent
from anmei.conversations.services.handoffs import conversation_welcome_schedule, summary_schedule
from anmei.conversations.services.routing import assignment_schedule

logger = logging.getLogger("anmei.conversations")

S = Conversation.Status
_STAFF = (User.Role.CONSULTANT, User.Role.ADMIN)


def conversation_create(
    *,
    customer: User,
    channel: str,
    bot_name: str = "",
    bot_instance_id: int | None = None,
    reuse_default: bool = False,
    event_action: str = "",
    event_details: dict[str, Any] | None = None,
) -> tuple[Conversation, bool]:
    """Open a waiting conversation for `customer`; it is their default one when they have none yet.

    With `reuse_default`, the customer's default conversation is returned instead when it exists
    (registration automation: a retried step finds the one it made). The partial unique index "one
    default conversation per customer" settles races: the loser gets the winner's default, or,
    without `reuse_default`, a plain (non-default) conversation. `event_action` stores a
    ConversationEvent with the creation, in the same transaction.
    """
    default = Conversation.objects.filter(customer=customer, is_default=True).first()
    if default is not None and reuse_default:
        return default, False
    fields = {
        "tenant_id": customer.tenant_id,
        "customer": customer,
        "channel": channel,
        "bot_name": bot_name,
        "bot_instance_id": bot_instance_id,
        "status": S.WAITING,
    }
    try:
        with transaction.atomic():
            conversation = Conversation.objects.create(**fields, is_default=default is None)
            _created_event(conversation, event_action, event_details)
    except IntegrityError:
        if reuse_default:
            return Conversation.objects.get(customer=customer, is_default=True), False
        with transaction.atomic():
            conversation = Conversation.objects.create(**fields, is_default=False)
            _created_event(conversation, event_action, event_details)
    assignment_schedule(tenant_id=conversation.tenant_id, reason="waiting")
    return conversation, True


def conversation_start_by_customer(*, customer: User) -> tuple[Conversation, bool]:
    """Return the customer's open conversation, or open a new waiting one (`created=True`).

    A returning customer whose conversations all ended asks again here. The customer's row lock
    serialises two tabs asking at once, so they get the same conversation. The new conversation
    reaches the console's waiting list like any other (`conversation.updated`, action `created`);
    whether it gets a welcome is the automation settings' decision (the welcome job hands it over).
    A customer's very first conversation stays the registration run's: the run's own welcome covers it.
    """
    if customer.role != User.Role.CUSTOMER:
        raise ApplicationError("permission_denied", "customers only", status_code=403)
    with transaction.atomic():
        User.objects.select_for_update().filter(pk=customer.pk).first()
        open_one = (
            Conversation.objects.filter(tenant_id=customer.tenant_id, customer=customer)
            .exclude(status=S.ENDED)
            .order_by("-id")
            .first()
        )
        if open_one is not None:
            return open_one, False
        conversation, _ = conversation_create(
            customer=customer, channel=customer.source or "web", event_action="created_by_customer"
        )
        if Conversation.objects.filter(customer=customer).exclude(pk=conversation.pk).exists():
            conversation_welcome_schedule(tenant_id=conversation.tenant_id, conversation_id=conversation.id)
        event = {
            "type": "conversation.updated",
            "event_id": conversation.events.order_by("-id").values_list("id", flat=True).first(),
            "conversation_id": conversation.id,
            "customer_id": customer.id,
            "action": "created",
            "from_status": "",
            "status": S.WAITING,
            "consultant_id": None,
            "transfer_to_id": None,
            "actor_id": customer.id,
            "timestamp": conversation.created_at.isoformat(),
        }
        tenant_id = conversation.tenant_id
        transaction.on_commit(lambda: _push(tenant_id, event))
    logger.info(
        "conversation started by customer",
        extra={"tenant_id": conversation.tenant_id, "conversation_id": conversation.id, "customer_id": customer.id},
    )
    return conversation, True


def _created_event(conversation: Conversation, action: str, details: dict[str, Any] | None) -> None:
    if action:
        ConversationEvent.objects.create(
            tenant_id=conversation.tenant_id,
            conversation=conversation,
            action=action,
            from_status="",
            to_status=conversation.status,
            details=details or {},
        )


def _locked(*, tenant_id: int, conversation_id: int) -> Conversation:
    conversation = Conversation.objects.select_for_update().filter(pk=conversation_id, tenant_id=tenant_id).first()
    if conversation is None:
        raise NotFoundError("conversation")
    return conversation


def _require_staff(user: User) -> None:
    if user.role not in _STAFF:
        raise ApplicationError("permission_denied", "consultants and admins only", status_code=403)


def _illegal(action: str, conversation: Conversation) -> ConflictError:
    return ConflictError(
        "illegal_transition",
        f"cannot {action} a conversation that is {conversation.status}",
        details={"status": conversation.status, "action": action, "conversation_id": conversation.id},
    )


def _not_yours(action: str, conversation: Conversation) -> ApplicationError:
    return ApplicationError(
        "not_assigned",
        f"only the consultant concerned may {action} this conversation",
        status_code=403,
        details={"status": conversation.status, "action": action, "conversation_id": conversation.id},
    )


def _apply(
    conversation: Conversation,
    *,
    actor: User | None,
    action: str,
    to_status: str,
    updates: dict[str, Any],
    details: dict[str, Any] | None = None,
) -> Conversation:
    """Write the transition if the status is still the one we read; otherwise it is a 409."""
    from_status = conversation.status
    now = timezone.now()
    updates = {**updates, "status": to_status, "updated_at": now}
    if to_status == S.ENDED:
        updates["ended_at"] = now
    rows = Conversation.objects.filter(pk=conversation.pk, status=from_status).update(**updates)
    if rows != 1:  # lost a race (SQLite has no row locks): report what is there now
        conversation.refresh_from_db()
        raise _illegal(action, conversation)
    for field, value in updates.items():
        setattr(conversation, field, value)
    stored = ConversationEvent.objects.create(
        tenant_id=conversation.tenant_id,
        conversation=conversation,
        actor=actor,
        action=action,
        from_status=from_status,
        to_status=to_status,
        details=details or {},
    )
    event = {
        "type": "conversation.updated",
        "event_id": stored.id,  # the console's resync cursor (`sync` on /ws/console/)
        "conversation_id": conversation.id,
        "customer_id": conversation.customer_id,
        "action": action,
        "from_status": from_status,
        "status": to_status,
        "consultant_id": conversation.consultant_id,
        "transfer_to_id": conversation.transfer_to_id,
        "actor_id": actor.id if actor else None,
        "timestamp": now.isoformat(),
    }
    if stored.details.get("note"):
        event["note"] = stored.details["note"]  # staff only: left out of the customer's copy
    tenant_id = conversation.tenant_id
    transaction.on_commit(lambda: _push(tenant_id, event))
    logger.info(
        "conversation transition",
        extra={
            "tenant_id": tenant_id,
            "conversation_id": conversation.id,
            "action": action,
            "from_status": from_status,
            "to_status": to_status,
            "actor_id": event["actor_id"],
        },
    )
    return conversation


def _push(tenant_id: int, event: dict) -> None:
    """Tell every console of the tenant and the customer; never fail the request.

    Consultants see every conversation of their tenant (the list's 全部 tab, the customer panel's
    history), so every change goes to the console group, not only to the people who held it: a
    colleague's transfer and end reach the consultant who still has it open.
    """
    realtime.broadcast_to_console(tenant_id, event)  # the event row is the record; realtime logs a loss
    realtime.broadcast_to_user(tenant_id, event["customer_id"], customer_view(event))


def customer_view(event: dict) -> dict:
    """The customer's copy of a status change: staff-only fields (a hand-off note) left out."""
    return {key: value for key, value in event.items() if key not in ConversationEvent.STAFF_ONLY_DETAILS}


@transaction.atomic
def conversation_claim(*, user: User, conversation_id: int) -> Conversation:
    """Take a waiting conversation; of concurrent claimers exactly one wins, the rest get a 409."""
    _require_staff(user)
    conversation = _locked(tenant_id=user.tenant_id, conversation_id=conversation_id)
    if conversation.status != S.WAITING:
        raise _illegal("claim", conversation)
    return _apply(conversation, actor=user, action="claim", to_status=S.ACTIVE, updates={"consultant": user})


@transaction.atomic
def conversation_transfer(*, user: User, conversation_id: int, to_consultant_id: int, note: str = "") -> Conversation:
    """Offer an active conversation to a colleague, with an optional hand-off note only staff see."""
    _require_staff(user)
    conversation = _locked(tenant_id=user.tenant_id, conversation_id=conversation_id)
    if conversation.status != S.ACTIVE:
        raise _illegal("transfer", conversation)
    if conversation.consultant_id != user.id and user.role != User.Role.ADMIN:
        raise _not_yours("transfer", conversation)
    target = User.objects.filter(pk=to_consultant_id, tenant_id=user.tenant_id, role__in=_STAFF, is_active=True).first()
    if target is None:
        raise ApplicationError(
            "invalid_consultant",
            "to_consultant is not a consultant of this tenant",
            status_code=400,
            details={"field": "to_consultant"},
        )
    if target.id == conversation.consultant_id:
        raise ApplicationError(
            "invalid_consultant",
            "the conversation is already theirs",
            status_code=400,
            details={"field": "to_consultant"},
        )
    return _apply(
        conversation,
        actor=user,
        action="transfer",
        to_status=S.TRANSFERRING,
        updates={"transfer_to": target},
        details={
            "from_consultant": conversation.consultant_id,
            "to_consultant": target.id,
            **({"note": note.strip()} if note.strip() else {}),
        },
    )


@transaction.atomic
def conversation_accept(*, user: User, conversation_id: int) -> Conversation:
    _require_staff(user)
    conversation = _locked(tenant_id=user.tenant_id, conversation_id=conversation_id)
    if conversation.status != S.TRANSFERRING:
        raise _illegal("accept", conversation)
    if conversation.transfer_to_id != user.id:
        raise _not_yours("accept", conversation)
    from_consultant_id = conversation.consultant_id
    return _apply(
        conversation,
        actor=user,
        action="accept",
        to_status=S.ACTIVE,
        updates={"consultant": user, "transfer_to": None},
        details={"from_consultant": from_consultant_id, "to_consultant": user.id},
    )


@transaction.atomic
def conversation_decline(*, user: User, conversation_id: int) -> Conversation:
    """The invitee declines (or the inviter/an admin withdraws): it stays with the current consultant."""
    _require_staff(user)
    conversation = _locked(tenant_id=user.tenant_id, conversation_id=conversation_id)
    if conversation.status != S.TRANSFERRING:
        raise _illegal("decline", conversation)
    if user.id not in (conversation.transfer_to_id, conversation.consultant_id) and user.role != User.Role.ADMIN:
        raise _not_yours("decline", conversation)
    return _apply(
        conversation,
        actor=user,
        action="decline",
        to_status=S.ACTIVE,
        updates={"transfer_to": None},
        details={"declined_by": user.id, "to_consultant": conversation.transfer_to_id},
    )


@transaction.atomic
def conversation_end(
    *, user: User | None, conversation_id: int, tenant_id: int | None = None, reason: str = "consultant"
) -> Conversation:
    """End a conversation: its consultant or an admin (any staff for a waiting one), or the inactivity sweep."""
    if user is not None:
        _require_staff(user)
        tenant_id = user.tenant_id
    conversation = _locked(tenant_id=tenant_id, conversation_id=conversation_id)
    if conversation.status == S.ENDED:
        raise _illegal("end", conversation)
    if (
        user is not None
        and conversation.status != S.WAITING
        and user.role != User.Role.ADMIN
        and user.id != conversation.consultant_id
    ):
        raise _not_yours("end", conversation)
    held_by = conversation.consultant_id if conversation.is_held else None
    ended = _apply(
        conversation,
        actor=user,
        action="end" if user is not None else "timeout",
        to_status=S.ENDED,
        updates={"transfer_to": None},
        details={"reason": reason},
    )
    summary_schedule(tenant_id=ended.tenant_id, conversation_id=ended.id)  # durable job, runs after commit
    if held_by is not None:  # its consultant has room for one more
        assignment_schedule(tenant_id=ended.tenant_id, reason="freed")
    return ended


def conversation_tenants_with_open() -> list[int]:
    """Ids of the tenants that have at least one conversation not yet ended (the inactivity sweep)."""
    return list(Conversation.objects.exclude(status=S.ENDED).values_list("tenant_id", flat=True).distinct().order_by())


def conversation_end_idle(*, tenant_id: int, idle_for: timedelta, now=None) -> int:
    """End this tenant's open conversations with no activity for `idle_for`; return how many.

    Idempotent: an already-ended conversation is skipped, a race with a consultant's own end is a no-op.
    """
    now = now or timezone.now()
    idle = (
        Conversation.objects.filter(tenant_id=tenant_id)
        .exclude(status=S.ENDED)
        .annotate(last_activity=Coalesce("last_message_at", "created_at"))
        .filter(Q(last_activity__lt=now - idle_for))
        .values_list("id", flat=True)
    )
    ended = 0
    for conversation_id in list(idle):
        try:
            conversation_end(user=None, tenant_id=tenant_id, conversation_id=conversation_id, reason="inactivity")
            ended += 1
        except ConflictError:
            continue
    return ended
