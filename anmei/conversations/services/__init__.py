"""Conversation writes: the lifecycle state machine and message storage/routing.

Views, WebSocket commands, bot webhooks and tasks all come through here.
"""

from anmei.conversations.services.conversation_settings import conversation_settings_get_or_create  # noqa: F401
from anmei.conversations.services.inactivity import conversation_end_inactive  # noqa: F401
from anmei.conversations.services.lifecycle import (  # noqa: F401
    conversation_accept,
    conversation_claim,
    conversation_create,
    conversation_decline,
    conversation_end,
    conversation_end_idle,
    conversation_start_by_customer,
    conversation_tenants_with_open,
    conversation_transfer,
)
from anmei.conversations.services.messages import (  # noqa: F401
    conversation_message_send,
    message_create,
    message_event,
    message_media_play_set,
    message_route,
    message_route_loaded,
    message_transcript_set,
)
