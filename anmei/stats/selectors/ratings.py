"""A conversation's CSAT rating as its customer's pages read it."""

from __future__ import annotations

from typing import Any

from anmei.accounts.models import User
from anmei.conversations.selectors import conversation_get
from anmei.stats.models import Rating


def rating_get(*, user: User, conversation_id: int) -> dict[str, Any]:
    """Whether a conversation was rated, and how: the customer's pages ask it so a rated one stays rated.

    The conversation's customer, or staff of its tenant; anyone else gets a 404 (like the POST).
    """
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    rating = Rating.objects.filter(conversation=conversation).first()
    return {
        "conversation_id": conversation.id,
        "rated": rating is not None,
        "score": rating.score if rating else None,
        "comment": rating.comment if rating else None,
        "created_at": rating.created_at.isoformat() if rating else None,
    }
