"""Transfers waiting on a consultant who went away or offline go back to the queue (docs/routing.md).

In an automatic routing mode an invitation nobody can answer would hold the customer: when the
invited consultant leaves the online set (away, or their last console closed), each conversation
`transferring` to them becomes `waiting` again, unassigned, and an assignment round is scheduled
after commit. In manual mode nothing changes (the inviter can withdraw, an admin can decline).
The sweep runs the same check, so a console that died without closing is caught once its
presence expires.
"""

from __future__ import annotations

import logging

from django.db import transaction

from anmei.common.presence import online_user_ids
from anmei.conversations.models import Conversation, RoutingSettings
from anmei.conversations.selectors import routing_settings_get
from anmei.conversations.services.lifecycle import _apply
from anmei.conversations.services.routing import assignment_schedule

logger = logging.getLogger("anmei.conversations")

RETURNED = "transfer_returned"


def transfers_return_to_queue(*, tenant_id: int, user_id: int | None = None) -> list[int]:
    """Return to the queue the tenant's transfers whose target is not online (only `user_id`'s if given).

    Idempotent: a transfer accepted, declined or already returned meanwhile is skipped.
    """
    if routing_settings_get(tenant_id=tenant_id).mode == RoutingSettings.Mode.MANUAL:
        return []
    online = online_user_ids(tenant_id=tenant_id)
    pending = Conversation.objects.filter(tenant_id=tenant_id, status=Conversation.Status.TRANSFERRING).exclude(
        transfer_to_id__in=online
    )
    if user_id is not None:
        if user_id in online:  # another console of theirs is still open and not away
            return []
        pending = pending.filter(transfer_to_id=user_id)
    returned = [cid for cid in pending.values_list("id", flat=True) if _return_one(tenant_id, cid, online)]
    if returned:
        logger.info(
            "transfers returned to queue",
            extra={"tenant_id": tenant_id, "consultant_id": user_id, "conversation_ids": returned},
        )
    return returned


@transaction.atomic
def _return_one(tenant_id: int, conversation_id: int, online: set[int]) -> bool:
    conversation = (
        Conversation.objects.select_for_update()
        .filter(pk=conversation_id, tenant_id=tenant_id, status=Conversation.Status.TRANSFERRING)
        .exclude(transfer_to_id__in=online)
        .first()
    )
    if conversation is None:
        return False
    _apply(
        conversation,
        actor=None,
        action=RETURNED,
        to_status=Conversation.Status.WAITING,
        updates={"consultant": None, "transfer_to": None},
        details={"from_consultant": conversation.consultant_id, "to_consultant": conversation.transfer_to_id},
    )
    assignment_schedule(tenant_id=tenant_id, reason=f"returned:{conversation_id}")
    return True


def consultant_unavailable(*, tenant_id: int, user_id: int, role: str) -> None:
    """A consultant went away or closed their last console: their waiting transfers return to the queue."""
    if role == "consultant":
        transfers_return_to_queue(tenant_id=tenant_id, user_id=user_id)
