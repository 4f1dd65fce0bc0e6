"""Outbound to IM customers: signed callback deliveries (idempotent per message) and auto-replies."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from anmei.ai.gateway import generate_reply
from anmei.blacklist.selectors import blacklist_is_blocked
from anmei.bots.models import BotDelivery, BotInstance
from anmei.bots.services.instances import gateway_settings_get_or_create, signed_post
from anmei.common import realtime
from anmei.conversations.models import Message
from anmei.conversations.services import message_create, message_event
from anmei.stats.services.events import stats_on_bot_reply

logger = logging.getLogger("anmei.bots")

MESSAGE_SEND_PATH = "/astrbot-api/v1/message/send"


def bot_message_deliver(*, message_id: int) -> None:
    """Send a stored message to its IM customer through the conversation's bot, after commit.

    Safe inside or outside a transaction and safe to call twice: the delivery row makes the send
    happen once per message.
    """
    from workers.bots import deliver_message

    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None:
        return
    # The pending row commits with the caller's transaction: if the enqueue below is lost (broker
    # down at that moment), `bot_deliveries_resume` finds it and enqueues it again.
    BotDelivery.objects.get_or_create(
        message=message, defaults={"tenant_id": message.tenant_id, "bot_id": message.conversation.bot_instance_id}
    )
    transaction.on_commit(lambda: deliver_message.delay(message_id), robust=True)


def bot_deliveries_resume(*, older_than_seconds: float = 60) -> int:
    """Enqueue deliveries that never got a first attempt (beat; their enqueue was lost)."""
    from datetime import timedelta

    from workers.bots import deliver_message

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    stuck = list(
        BotDelivery.objects.filter(status=BotDelivery.Status.PENDING, attempts=0, created_at__lt=cutoff).values_list(
            "message_id", flat=True
        )[:1000]
    )
    for message_id in stuck:
        deliver_message.delay(message_id)
    return len(stuck)


def bot_delivery_attempt(*, message_id: int) -> tuple[str, float | None]:
    """Try one send; return (outcome, retry countdown). Outcomes: sent, suppressed, failed, retry, missing.

    The delivery row is locked for the attempt, so a redelivered twin of the task waits and then
    sees `sent`. Countdowns come from the tenant's GatewaySettings at run time; after the last one
    an AdminAlert is raised and the delivery is marked failed.
    """
    message = Message.objects.select_related("conversation__customer").filter(pk=message_id).first()
    if message is None:
        return "missing", None
    conversation = message.conversation
    with transaction.atomic():
        delivery, _ = BotDelivery.objects.get_or_create(
            message=message, defaults={"tenant_id": message.tenant_id, "bot_id": conversation.bot_instance_id}
        )
        delivery = BotDelivery.objects.select_for_update().get(pk=delivery.pk)
        if delivery.status != BotDelivery.Status.PENDING:
            return delivery.status, None
        bot = BotInstance.objects.filter(
            pk=conversation.bot_instance_id, tenant_id=message.tenant_id, status=BotInstance.Status.ACTIVE
        ).first()
        customer = conversation.customer
        reason = ""
        if bot is None:
            reason = "no active bot for this conversation"
        elif blacklist_is_blocked(
            tenant_id=message.tenant_id, platform=customer.source, user_id=customer.platform_user_id
        ):
            reason = "customer is blacklisted"
        if reason:
            delivery.status, delivery.last_error = BotDelivery.Status.SUPPRESSED, reason
            delivery.save(update_fields=["status", "last_error"])
            logger.info(
                "bot delivery suppressed",
                extra={"tenant_id": message.tenant_id, "message_id": message.id, "reason": reason},
            )
            return "suppressed", None
        body = {
            "message_id": message.id,
            "conversation_id": conversation.id,
            "platform": customer.source,
            "user_id": customer.platform_user_id,
            "sender_type": message.sender_type,
            "type": message.type,
            "content": message.content,
            "payload": message.payload,
            "timestamp": message.created_at.isoformat(),
        }
        error = signed_post(
            bot=bot, path=MESSAGE_SEND_PATH, payload=body, extra_headers={"X-Anmei-Message-Id": str(message.id)}
        )
        delivery.attempts += 1
        delivery.bot = bot
        if not error:
            delivery.status, delivery.sent_at, delivery.last_error = BotDelivery.Status.SENT, timezone.now(), ""
            delivery.save(update_fields=["status", "sent_at", "last_error", "attempts", "bot"])
            return "sent", None
        delivery.last_error = error
        countdowns = gateway_settings_get_or_create(tenant_id=message.tenant_id).countdowns
        if delivery.attempts <= len(countdowns):
            delivery.save(update_fields=["attempts", "last_error", "bot"])
            logger.warning(
                "bot delivery failed, will retry",
                extra={
                    "tenant_id": message.tenant_id,
                    "message_id": message.id,
                    "attempt": delivery.attempts,
                    "error": error,
                },
            )
            return "retry", float(countdowns[delivery.attempts - 1])
        delivery.status = BotDelivery.Status.FAILED
        delivery.save(update_fields=["status", "attempts", "last_error", "bot"])
    from anmei.notifications.services import admin_alert_raise

    admin_alert_raise(
        tenant_id=message.tenant_id,
        source="bot_delivery",
        code="bot_unreachable",
        message=f"could not deliver message {message.id} through bot '{bot.name}' after {delivery.attempts} attempts",
        dedupe_key=f"bot_delivery:{message.id}",
        details={"bot_id": bot.id, "message_id": message.id, "last_error": error},
    )
    return "failed", None


def _rule_reply(bot: BotInstance | None, text: str) -> tuple[str | None, str]:
    """The first matching keyword rule's reply and its keyword (statistics count keyword hits)."""
    for rule in (bot.auto_reply_rules if bot else None) or []:
        if isinstance(rule, dict) and rule.get("keyword") and rule.get("reply") and str(rule["keyword"]) in text:
            return str(rule["reply"]), str(rule["keyword"])
    return None, ""


def _ai_reply(message: Message) -> str | None:
    """The tenant's agent answers through the context builder; None (agent off, failing, over quota) → away."""
    return generate_reply(
        tenant_id=message.tenant_id,
        customer_id=message.conversation.customer_id,
        conversation_id=message.conversation_id,
        text=message.content,
        bot_id=message.conversation.bot_instance_id,
    )


def auto_reply_create(*, message_id: int) -> Message | None:
    """Answer a customer message nobody is online for: keyword rule, else AI gateway, else away message.

    Stored once per customer message (external id `autoreply:<id>`), then delivered through the
    bot (IM customers) or pushed over WebSocket (web customers).
    """
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None or message.is_blocked or message.sender_type != Message.SenderType.CUSTOMER:
        return None
    gateway = gateway_settings_get_or_create(tenant_id=message.tenant_id)
    if not gateway.auto_reply_enabled:
        return None
    conversation = message.conversation
    external_id = f"autoreply:{message.id}"
    reply = Message.objects.filter(tenant_id=message.tenant_id, external_id=external_id).first()
    created = False
    if reply is None:
        bot = BotInstance.objects.filter(pk=conversation.bot_instance_id, tenant_id=message.tenant_id).first()
        (text, keyword), source = _rule_reply(bot, message.content), "rule"
        if text is None and message.type in (Message.Type.TEXT, Message.Type.VOICE) and message.content:
            text, source = _ai_reply(message), "ai"
        if text is None:
            text, source = (bot.away_message if bot and bot.away_message else gateway.away_message), "away"
        with transaction.atomic():
            reply, created = message_create(
                conversation=conversation,
                sender_type=Message.SenderType.BOT,
                type=Message.Type.TEXT,
                content=text,
                payload={"auto_reply": True, "in_reply_to": message.id, "source": source}
                | ({"keyword": keyword} if source == "rule" else {}),
                external_id=external_id,
            )
            if created:
                stats_on_bot_reply(reply, conversation)
    if conversation.bot_instance_id:
        bot_message_deliver(message_id=reply.id)  # idempotent: a redelivered task re-enqueues, sends once
    elif created:
        event = message_event(reply)
        try:
            realtime.broadcast_to_user(message.tenant_id, conversation.customer_id, event)
        except Exception:  # noqa: BLE001 - stored; the customer sees it on reload
            pass
    return reply
