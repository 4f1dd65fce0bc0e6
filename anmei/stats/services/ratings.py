"""CSAT: the customer rates an ended conversation once."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from anmei.accounts.models import User
from anmei.common.errors import ApplicationError, ConflictError, NotFoundError
from anmei.conversations.models import Conversation
from anmei.stats.models import Rating, ReportingEvent
from anmei.stats.services.events import reporting_event_record

logger = logging.getLogger("anmei.stats")


def rating_create(*, user: User, conversation_id: int, score: int, comment: str = "") -> Rating:
    """Store the customer's score; only their own ended conversation, only once (the unique row decides)."""
    conversation = Conversation.objects.filter(pk=conversation_id, tenant_id=user.tenant_id).first()
    if conversation is None or (user.role == User.Role.CUSTOMER and conversation.customer_id != user.id):
        raise NotFoundError("conversation")
    if user.role != User.Role.CUSTOMER:
        raise ApplicationError("permission_denied", "only the conversation's customer may rate it", status_code=403)
    if conversation.status != Conversation.Status.ENDED:
        raise ConflictError(
            "conversation_not_ended",
            "a conversation can be rated once it has ended",
            details={"status": conversation.status, "conversation_id": conversation.id},
        )
    try:
        with transaction.atomic():
            rating = Rating.objects.create(
                tenant_id=conversation.tenant_id, conversation=conversation, customer=user, score=score, comment=comment
            )
            reporting_event_record(  # with the rating: both commit or neither
                tenant_id=conversation.tenant_id,
                kind=ReportingEvent.Kind.RATING,
                key=f"rating:{conversation.id}",
                conversation_id=conversation.id,
                consultant_id=conversation.consultant_id,
                channel=conversation.channel,
                occurred_at=rating.created_at,
                value_s=float(score),
            )
    except IntegrityError:
        raise ConflictError(
            "already_rated", "this conversation has been rated", details={"conversation_id": conversation.id}
        ) from None
    logger.info(
        "conversation rated",
        extra={"tenant_id": conversation.tenant_id, "conversation_id": conversation.id, "score": score},
    )
    return rating
