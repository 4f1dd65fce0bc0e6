"""Automatic assignment: waiting conversations go to online consultants under capacity (docs/routing.md).

Decided in one place, `conversations_assign`. Each round runs in its own transaction and first
locks the rows of the tenant's online consultants (SELECT … FOR UPDATE, in id order), then counts
what they hold, then takes the oldest waiting conversation with SKIP LOCKED and writes the
transition through the lifecycle's conditional UPDATE. Two workers assigning for one tenant thus
take turns on the consultant locks, and each counts after the other's commit: no consultant is
given work past capacity. A consultant's own claim does not take those locks (a person may choose
to take more); automatic assignment simply skips them while they are at or over capacity.

Work reaches it as a durable job (`conversations.assign`) scheduled after the change it follows
from: a conversation starting to wait, a consultant ending one or coming online, and the sweep.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from anmei.accounts.models import User
from anmei.common.presence import online_user_ids
from anmei.conversations.business_hours import business_hours_open
from anmei.conversations.models import Conversation, ConversationEvent, RoutingSettings
from anmei.conversations.selectors import routing_settings_get
from anmei.conversations.services.lifecycle import _apply

logger = logging.getLogger("anmei.conversations")

ASSIGNED = "assigned"


def conversations_assign(*, tenant_id: int, now=None) -> list[int]:
    """Assign the tenant's waiting conversations, oldest first, until none waits or nobody is free.

    Returns the ids assigned. Does nothing in manual mode or outside business hours.
    """
    routing = routing_settings_get(tenant_id=tenant_id)
    if routing.mode == RoutingSettings.Mode.MANUAL:
        return []
    if not business_hours_open(routing.business_hours, now or timezone.now()):
        return []
    assigned: list[int] = []
    while True:
        online = online_user_ids(tenant_id=tenant_id)
        conversation_id = _assign_one(tenant_id=tenant_id, routing=routing, online=online)
        if conversation_id is None:
            return assigned
        assigned.append(conversation_id)


@transaction.atomic
def _assign_one(*, tenant_id: int, routing: RoutingSettings, online: set[int]) -> int | None:
    consultants = list(
        User.objects.select_for_update()
        .filter(id__in=online, tenant_id=tenant_id, role=User.Role.CONSULTANT, is_active=True)
        .order_by("id")
    )
    if not consultants:
        return None
    ids = [c.id for c in consultants]
    load = dict(
        Conversation.objects.filter(tenant_id=tenant_id, consultant_id__in=ids, status__in=Conversation.HELD_STATUSES)
        .values_list("consultant_id")
        .annotate(n=Count("id"))
    )
    free = [c for c in consultants if load.get(c.id, 0) < routing.capacity_per_consultant]
    if not free:
        return None
    conversation = (
        Conversation.objects.select_for_update(skip_locked=True)
        .filter(tenant_id=tenant_id, status=Conversation.Status.WAITING)
        .order_by("created_at", "id")
        .first()
    )
    if conversation is None:
        return None
    if routing.mode == RoutingSettings.Mode.LEAST_BUSY:
        pick = min(free, key=lambda c: (load.get(c.id, 0), c.id))
    else:
        last = dict(
            ConversationEvent.objects.filter(tenant_id=tenant_id, action=ASSIGNED, details__consultant__in=ids)
            .values_list("details__consultant")
            .annotate(at=Max("created_at"))
        )
        epoch = timezone.now().replace(year=1970)
        pick = min(free, key=lambda c: (last.get(c.id) or epoch, c.id))
    _apply(
        conversation,
        actor=None,
        action=ASSIGNED,
        to_status=Conversation.Status.ACTIVE,
        updates={"consultant": pick},
        details={"consultant": pick.id, "mode": routing.mode},
    )
    logger.info(
        "conversation assigned",
        extra={
            "tenant_id": tenant_id,
            "conversation_id": conversation.id,
            "consultant_id": pick.id,
            "mode": routing.mode,
        },
    )
    return conversation.id


def conversations_assign_sweep() -> dict[int, list[int]]:
    """Run a round for every tenant in an automatic mode with waiting work (beat: nothing waits forever).

    First, transfers whose target is no longer online return to the queue (a console that died
    without closing is only seen once its presence expires).
    """
    from anmei.conversations.services.transfer_return import transfers_return_to_queue

    transferring = (
        RoutingSettings.objects.exclude(mode=RoutingSettings.Mode.MANUAL)
        .filter(tenant__conversations__status=Conversation.Status.TRANSFERRING)
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    for tenant_id in transferring:
        transfers_return_to_queue(tenant_id=tenant_id)
    tenant_ids = (
        RoutingSettings.objects.exclude(mode=RoutingSettings.Mode.MANUAL)
        .filter(tenant__conversations__status=Conversation.Status.WAITING)
        .values_list("tenant_id", flat=True)
        .distinct()
    )
    return {tenant_id: conversations_assign(tenant_id=tenant_id) for tenant_id in tenant_ids}
