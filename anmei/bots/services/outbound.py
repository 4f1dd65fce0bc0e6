"""Outbound to IM customers: signed callback deliveries (idempotent per message) and auto-replies."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from anmei.ai.gateway import generate_reply
from anmei.blacklist.selectors import blacklist_is_blocked
from anmei.bots.models import BotDelivery, BotInstance
from anmei.bots.selectors import gateway_settings_get
from anmei.bots.services.instances import gateway_settings_get_or_create, signed_post
from anmei.common import realtime
from anmei.common.presence import online_user_ids
from anmei.conversations.models import Conversation, Message
from anmei.conversations.services import message_create, message_event
from anmei.jobs.services import job_schedule
from anmei.stats.services.events import stats_on_bot_reply

logger = logging.getLogger("anmei.bots")

MESSAGE_SEND_PATH = "/astrbot-api/v1/message/send"
DELIVERY_KIND = "bots.delivery"
AUTO_REPLY_KIND = "bots.auto_reply"
AUTO_REPLY_JOB = {"kind": AUTO_REPLY_KIND, "task": "workers.bots.auto_reply"}
HELD = (Conversation.Status.ACTIVE, Conversation.Status.TRANSFERRING)


def bot_message_deliver(*, message_id: int) -> None:
    """Send a stored message to its IM customer through the conversation's bot, after commit.

    Call inside the transaction that stores the message: the delivery row and its durable job
    commit with it (a lost publish is re-sent by the jobs sweep). Safe to call twice: one job per
    message, and the delivery row makes the send happen once.
    """
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None:
        return
    BotDelivery.objects.get_or_create(
        message=message, defaults={"tenant_id": message.tenant_id, "bot_id": message.conversation.bot_instance_id}
    )
    countdowns = [float(x) for x in gateway_settings_get(tenant_id=message.tenant_id).countdowns]
    job_schedule(
        kind=DELIVERY_KIND,
        key=f"message:{message.id}",
        task="workers.bots.deliver_message",
        tenant_id=message.tenant_id,
        payload={"message_id": message.id},
        # the delivery decides its retries from the tenant's countdowns at each attempt; the extra
        # attempts are for those lost with their worker
        max_attempts=len(countdowns) + 1 + settings.BOT_WORKER_LOSS_ALLOWANCE,
        retry_countdowns=countdowns,
        lease_seconds=settings.BOT_DELIVERY_LEASE_SECONDS,
    )


def bot_delivery_attempt(*, message_id: int) -> tuple[str, float | None]:
    """Try one send; return (outcome, retry countdown). Outcomes: sent, suppressed, failed, retry, missing.

    No row lock is held across the HTTP call: the job's lease (a conditional UPDATE) is what makes
    this the only attempt running for the message, and each outcome is recorded in its own commit
    after the call. Countdowns come from the tenant's GatewaySettings at run time; after the last
    one an AdminAlert is raised and the delivery is marked failed.
    """
    message = Message.objects.select_related("conversation__customer").filter(pk=message_id).first()
    if message is None:
        return "missing", None
    conversation = message.conversation
    delivery, _ = BotDelivery.objects.get_or_create(
        message=message, defaults={"tenant_id": message.tenant_id, "bot_id": conversation.bot_instance_id}
    )
    if delivery.status != BotDelivery.Status.PENDING:
        return delivery.status, None
    pending = BotDelivery.objects.filter(pk=delivery.pk, status=BotDelivery.Status.PENDING)
    bot = BotInstance.objects.filter(
        pk=conversation.bot_instance_id, tenant_id=message.tenant_id, status=BotInstance.Status.ACTIVE
    ).first()
    customer = conversation.customer
    reason = ""
    if bot is None:
        reason = "no active bot for this conversation"
    elif blacklist_is_blocked(tenant_id=message.tenant_id, platform=customer.source, user_id=customer.platform_user_id):
        reason = "customer is blacklisted"
    if reason:
        pending.update(status=BotDelivery.Status.SUPPRESSED, last_error=reason)
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
    attempts = delivery.attempts + 1
    if not error:
        pending.update(
            status=BotDelivery.Status.SENT, sent_at=timezone.now(), last_error="", attempts=attempts, bot=bot
        )
        return "sent", None
    countdowns = gateway_settings_get(tenant_id=message.tenant_id).countdowns
    if attempts <= len(countdowns):
        pending.update(attempts=attempts, last_error=error, bot=bot)
        logger.warning(
            "bot delivery failed, will retry",
            extra={"tenant_id": message.tenant_id, "message_id": message.id, "attempt": attempts, "error": error},
        )
        return "retry", float(countdowns[attempts - 1])
    pending.update(status=BotDelivery.Status.FAILED, attempts=attempts, last_error=error, bot=bot)
    _delivery_alert(message=message, bot_name=bot.name, bot_id=bot.id, attempts=attempts, error=error)
    return "failed", None


def _delivery_alert(*, message: Message, bot_name: str, bot_id: int | None, attempts: int, error: str) -> None:
    from anmei.notifications.services import admin_alert_raise

    admin_alert_raise(
        tenant_id=message.tenant_id,
        source="bot_delivery",
        code="bot_unreachable",
        message=f"could not deliver message {message.id} through bot '{bot_name}' after {attempts} attempts",
        dedupe_key=f"bot_delivery:{message.id}",
        details={"bot_id": bot_id, "message_id": message.id, "last_error": error},
    )


def bot_delivery_job_failed(job, error: str) -> None:
    """`on_failed` of a delivery job whose attempts ran out without the delivery recording it."""
    message = Message.objects.filter(pk=job.payload["message_id"]).first()
    if message is None:
        return
    delivery = BotDelivery.objects.filter(message=message).select_related("bot").first()
    failed = BotDelivery.objects.filter(message=message, status=BotDelivery.Status.PENDING).update(
        status=BotDelivery.Status.FAILED, last_error=error[:500]
    )
    if failed:
        bot = delivery.bot if delivery else None
        _delivery_alert(
            message=message,
            bot_name=bot.name if bot else "",
            bot_id=bot.id if bot else None,
            attempts=delivery.attempts if delivery else 0,
            error=error,
        )


def auto_reply_schedule(*, message: Message, conversation: Conversation) -> None:
    """In the transaction that stores a customer message: the durable job of its auto-reply.

    Not for a conversation a consultant holds (their console gets the message). Whether anybody
    is online is decided when the job runs, after the message is routed.
    """
    if message.is_blocked or message.sender_type != Message.SenderType.CUSTOMER:
        return
    if conversation.status in HELD and conversation.consultant_id:
        return
    job_schedule(
        kind=AUTO_REPLY_KIND,
        key=f"message:{message.id}",
        task=AUTO_REPLY_JOB["task"],
        tenant_id=message.tenant_id,
        payload={"message_id": message.id},
        queue=settings.CELERY_REPLIES_QUEUE,
        max_attempts=settings.BOT_AUTO_REPLY_MAX_ATTEMPTS,
        lease_seconds=settings.BOT_AUTO_REPLY_LEASE_SECONDS,
    )


def auto_reply_job_failed(job, error: str) -> None:
    """`on_failed` of an auto-reply job: the customer got no answer; tell the tenant's admins."""
    from anmei.notifications.services import admin_alert_raise

    message_id = job.payload["message_id"]
    admin_alert_raise(
        tenant_id=job.tenant_id,
        source="bot_auto_reply",
        code="auto_reply_failed",
        message=f"no auto-reply could be made for customer message {message_id} after {job.attempts} attempts",
        dedupe_key=f"auto_reply:{message_id}",
        details={"message_id": message_id, "last_error": error[:500]},
    )


def auto_reply_if_unanswered(*, message_id: int) -> Message | None:
    """The auto-reply job: answer unless a consultant took the conversation or consultants are online."""
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None:
        return None
    conversation = message.conversation
    if conversation.status in HELD and conversation.consultant_id:
        return None
    try:
        online = online_user_ids(tenant_id=message.tenant_id)
    except Exception:  # noqa: BLE001 - presence unknown (Redis down): the customer gets an answer
        online = ()
    if online:
        return None
    return auto_reply_create(message_id=message_id)


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
        with transaction.atomic():  # idempotent: one delivery job per reply, however often this runs
            bot_message_deliver(message_id=reply.id)
    elif created:
        event = message_event(reply)
        try:
            realtime.broadcast_to_user(message.tenant_id, conversation.customer_id, event)
        except Exception:  # noqa: BLE001 - stored; the customer sees it on reload
            pass
    return reply
