"""Storing messages once, and routing each new customer message to whoever should see it."""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction

from anmei.accounts.models import User
from anmei.common import realtime
from anmei.common.errors import ApplicationError, ConflictError
from anmei.common.presence import online_user_ids
from anmei.conversations.models import Conversation, Message
from anmei.conversations.selectors import conversation_get
from anmei.conversations.services.handoffs import (
    auto_reply_schedule,
    message_deliver_schedule,
    suggestion_request,
    voice_transcribe_id_new,
    voice_transcribe_schedule,
)
from anmei.media.links import media_url_for_payload
from anmei.media.services import media_delete, media_store

logger = logging.getLogger("anmei.conversations")

S = Conversation.Status


def message_create(
    *,
    conversation: Conversation,
    sender_type: str,
    sender: User | None = None,
    type: str = Message.Type.TEXT,  # noqa: A002 - the API field is called type
    content: str = "",
    payload: dict[str, Any] | None = None,
    external_id: str = "",
    is_blocked: bool = False,
) -> tuple[Message, bool]:
    """Store a message; with an `external_id` a repeat returns the stored one and `created=False`.

    The unique (tenant, external_id) constraint decides, so concurrent repeats also store one row.
    """
    try:
        with transaction.atomic():
            message = Message.objects.create(
                tenant_id=conversation.tenant_id,
                conversation=conversation,
                sender_type=sender_type,
                sender=sender,
                type=type,
                content=content,
                payload=payload or {},
                external_id=external_id,
                is_blocked=is_blocked,
            )
    except IntegrityError:
        if not external_id:
            raise
        return Message.objects.get(tenant_id=conversation.tenant_id, external_id=external_id), False
    if not is_blocked:
        Conversation.objects.filter(pk=conversation.pk).update(
            last_message_at=message.created_at, updated_at=message.created_at
        )
        conversation.last_message_at = message.created_at
    return message, True


def message_transcript_set(*, message_id: int, text: str | None, asr: dict[str, Any]) -> None:
    """Record a voice message's transcription outcome (called by anmei.asr).

    The transcript becomes the message's content, so message search finds it (an original
    content is kept in the payload); `asr` (status, language, … or the error code) goes into the
    payload. `text=None` records a failure and leaves the content alone.
    """
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        payload = {**message.payload, "asr": asr}
        fields: dict[str, Any] = {"payload": payload}
        if text is not None:
            if message.content and "original_content" not in payload:
                payload["original_content"] = message.content
            fields["content"] = text
        Message.objects.filter(pk=message_id).update(**fields)


def message_media_play_set(*, message_id: int, play: dict[str, Any]) -> bool:
    """Record the browser-playable rendition of a message's stored media (`payload.media.play`).

    Returns False when the message is gone or has no stored media; the first rendition recorded stays.
    """
    with transaction.atomic():
        message = Message.objects.select_for_update().filter(pk=message_id).first()
        media = (message.payload or {}).get("media") if message else None
        if not isinstance(media, dict):
            return False
        if media.get("play"):
            return True
        payload = {**message.payload, "media": {**media, "play": play}}
        Message.objects.filter(pk=message_id).update(payload=payload)
    return True


def message_event(message: Message) -> dict[str, Any]:
    """The `message.new` WebSocket event for a message."""
    return {
        "type": "message.new",
        "conversation_id": message.conversation_id,
        "message": {
            "id": message.id,
            "conversation_id": message.conversation_id,
            "sender_type": message.sender_type,
            "sender_id": message.sender_id,
            "type": message.type,
            "content": message.content,
            "payload": message.payload,
            "media_url": media_url_for_payload(message.tenant_id, message.payload),
            "delivery": message.delivery,
            "created_at": message.created_at.isoformat(),
        },
    }


def message_route(*, message_id: int) -> str:
    """Deliver a new customer message (call after commit) and say where it went.

    Assigned consultant → `message.new` to them; waiting with consultants online → the tenant's
    console group; nobody online → the auto-reply job (written with the message by its caller, see
    `handoffs.auto_reply_schedule`) answers. Blocked messages go nowhere.
    """
    message = Message.objects.select_related("conversation").get(pk=message_id)
    return message_route_loaded(message=message, conversation=message.conversation)


def message_route_loaded(*, message: Message, conversation: Conversation) -> str:
    """`message_route` for a caller that already holds the message and its conversation's state."""
    message_id, tenant_id = message.id, message.tenant_id
    if message.is_blocked:
        return "blocked"
    event = message_event(message)
    event["customer_id"] = conversation.customer_id
    A = Conversation.Answerer
    try:
        online = conversation.is_held or bool(online_user_ids(tenant_id=tenant_id))
    except Exception:  # noqa: BLE001 - presence unreadable (Redis down): fall back to an answer for the customer
        logger.warning("message route presence failed", extra={"tenant_id": tenant_id, "message_id": message_id})
        online = False
    answerer = conversation.answerer(consultants_online=online)
    if answerer == A.CONSULTANT and realtime.broadcast_to_user(tenant_id, conversation.consultant_id, event):
        suggestion_request(message=message, conversation=conversation)  # coalesced, after commit
        return "consultant"
    if answerer == A.CONSOLE and realtime.broadcast_to_console(tenant_id, event):
        return "console"
    if message.type == Message.Type.VOICE and message.payload.get("asr_task_id"):
        return "awaiting_transcript"  # anmei.asr schedules the auto-reply once the transcript is ready
    return "auto_reply"  # its job was written with the message; it answers unless someone took over


def conversation_message_send(
    *,
    user: User,
    conversation_id: int,
    type: str,  # noqa: A002
    content: str = "",
    upload: Any = None,
) -> Message:
    """A consultant replies or a customer writes in an open conversation.

    Consultants must hold the conversation (claim first); admins may always reply. A consultant's
    reply to an IM customer goes back through the bot callback after commit. An `upload` (image,
    file, voice; `content` is its caption) goes through the one media store (anmei.media.services:
    limits and type sniffing as for bot uploads) after the checks and before the transaction (the
    store may be a remote bucket); a message that then fails to store leaves no object behind.
    """
    conversation = conversation_get(user=user, conversation_id=conversation_id)
    if conversation.status == S.ENDED:
        raise ConflictError(
            "conversation_ended",
            "the conversation has ended",
            details={"status": conversation.status, "conversation_id": conversation.id},
        )
    if user.role == User.Role.CUSTOMER:
        sender_type = Message.SenderType.CUSTOMER
    else:
        sender_type = Message.SenderType.CONSULTANT
        if conversation.status == S.WAITING:
            raise ConflictError(
                "conversation_not_claimed",
                "claim the conversation before replying",
                details={"status": conversation.status, "conversation_id": conversation.id},
            )
        if user.role != User.Role.ADMIN and user.id != conversation.consultant_id:
            raise ApplicationError(
                "not_assigned",
                "only the consultant handling this conversation may reply",
                status_code=403,
                details={"status": conversation.status, "conversation_id": conversation.id},
            )
    payload: dict[str, Any] = {}
    if upload is not None:
        payload["media"] = media_store(tenant_id=conversation.tenant_id, kind=type, upload=upload).as_payload()
        if type == Message.Type.VOICE:  # transcribed like a bot's voice message (anmei.asr)
            payload["asr_task_id"] = voice_transcribe_id_new()
    try:
        message = _message_send_store(conversation, sender_type, user, type, content, payload)
    except BaseException:
        if payload:
            media_delete(tenant_id=conversation.tenant_id, key=payload["media"]["key"])
        raise
    logger.info(
        "message sent",
        extra={
            "tenant_id": conversation.tenant_id,
            "conversation_id": conversation.id,
            "message_id": message.id,
            "sender_type": sender_type,
        },
    )
    return message


def _message_send_store(
    conversation: Conversation,
    sender_type: str,
    user: User,
    type: str,  # noqa: A002
    content: str,
    payload: dict[str, Any],
) -> Message:
    with transaction.atomic():
        if sender_type == Message.SenderType.CUSTOMER:
            # the lock a returning welcome takes to decide whether it still opens the conversation
            # (anmei.automation.services.welcome): it is stored before this message or not at all
            Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        message, _ = message_create(
            conversation=conversation, sender_type=sender_type, sender=user, type=type, content=content, payload=payload
        )
        if payload.get("asr_task_id"):  # durable: commits with it; the transcript feeds any auto-reply
            voice_transcribe_schedule(message=message)
        if sender_type == Message.SenderType.CUSTOMER:
            if not payload.get("asr_task_id"):
                auto_reply_schedule(message=message, conversation=conversation)  # durable: commits with it
            transaction.on_commit(lambda: message_route(message_id=message.id), robust=True)
        elif conversation.bot_instance_id:
            message_deliver_schedule(tenant_id=message.tenant_id, message_id=message.id)
        # The customer's pages see every message of their conversation, their own included (sent
        # from another tab or device); a page drops an id it already shows.
        event = message_event(message)
        tenant_id, customer_id = conversation.tenant_id, conversation.customer_id
        transaction.on_commit(lambda: _push_quietly(tenant_id, customer_id, event))
    return message


def _push_quietly(tenant_id: int, user_id: int, event: dict) -> None:
    realtime.broadcast_to_user(tenant_id, user_id, event)  # the stored message is the record
