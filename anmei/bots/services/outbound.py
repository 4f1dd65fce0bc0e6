"""Outbound to IM customers: signed callback deliveries, idempotent per message.

A delivery is scheduled by whoever stores the message (`conversations.services.handoffs.
message_deliver_schedule`: a consultant's reply, an auto-reply, a registration welcome); its job
runs `bot_delivery_attempt` here.
"""

from __future__ import annotations

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from anmei.accounts.models import User
from anmei.blacklist.selectors import blacklist_is_blocked
from anmei.bots.models import BotDelivery, BotInstance
from anmei.bots.selectors import gateway_settings_get
from anmei.bots.services.instances import signed_post
from anmei.common import realtime
from anmei.common.errors import ConflictError, NotFoundError
from anmei.conversations.models import Message
from anmei.conversations.services.handoffs import message_deliver_schedule
from anmei.jobs.models import Job
from anmei.media.links import media_url_for_payload
from anmei.notifications.services import admin_alert_raise

logger = logging.getLogger("anmei.bots")

MESSAGE_SEND_PATH = "/astrbot-api/v1/message/send"


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
        delivery_changed_push(message_id=message.id)
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
        # a photo or file a consultant attached: a signed link under the bot's `anmei_base_url`
        "media_url": media_url_for_payload(message.tenant_id, message.payload),
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
        delivery_changed_push(message_id=message.id)
        return "sent", None
    countdowns = gateway_settings_get(tenant_id=message.tenant_id).countdowns
    if attempts <= len(countdowns):
        pending.update(attempts=attempts, last_error=error, bot=bot)
        delivery_changed_push(message_id=message.id)
        logger.warning(
            "bot delivery failed, will retry",
            extra={"tenant_id": message.tenant_id, "message_id": message.id, "attempt": attempts, "error": error},
        )
        return "retry", float(countdowns[attempts - 1])
    pending.update(status=BotDelivery.Status.FAILED, attempts=attempts, last_error=error, bot=bot)
    delivery_changed_push(message_id=message.id)
    _delivery_alert(message=message, bot_name=bot.name, bot_id=bot.id, attempts=attempts, error=error)
    return "failed", None


def _delivery_alert(*, message: Message, bot_name: str, bot_id: int | None, attempts: int, error: str) -> None:
    admin_alert_raise(
        tenant_id=message.tenant_id,
        source="bot_delivery",
        code="bot_unreachable",
        message=f"could not deliver message {message.id} through bot '{bot_name}' after {attempts} attempts",
        dedupe_key=f"bot_delivery:{message.id}",
        details={"bot_id": bot_id, "message_id": message.id, "last_error": error},
    )


def bot_delivery_job_failed(job, error: str) -> None:
    """`on_failed` of a delivery job whose attempts ran out without the delivery recording it.

    A job that a consultant's retry has superseded changes nothing: its failure may be recorded
    after the retry reset the delivery to pending, and must not fail the new attempt's delivery.
    """
    message = Message.objects.filter(pk=job.payload["message_id"]).first()
    if message is None:
        return
    if Job.objects.filter(kind=job.kind, key__startswith=f"message:{message.id}:", id__gt=job.id).exists():
        return
    delivery = BotDelivery.objects.filter(message=message).select_related("bot").first()
    failed = BotDelivery.objects.filter(message=message, status=BotDelivery.Status.PENDING).update(
        status=BotDelivery.Status.FAILED, last_error=error[:500]
    )
    if failed:
        delivery_changed_push(message_id=message.id)
        bot = delivery.bot if delivery else None
        _delivery_alert(
            message=message,
            bot_name=bot.name if bot else "",
            bot_id=bot.id if bot else None,
            attempts=delivery.attempts if delivery else 0,
            error=error,
        )


def delivery_changed_push(*, message_id: int) -> None:
    """Tell the tenant's consoles a delivery's state: `message.updated` {conversation_id, message: {id, delivery}}.

    Call after the change is committed (each outcome above is its own statement). A lost push is
    logged by realtime; the console reads the same state on its next load or resync.
    """
    message = Message.objects.select_related("conversation", "bot_delivery").filter(pk=message_id).first()
    if message is None:
        return
    event = {
        "type": "message.updated",
        "conversation_id": message.conversation_id,
        "message": {"id": message.id, "delivery": message.delivery},
    }
    realtime.broadcast_to_console(message.tenant_id, event)  # the delivery row is the record


def bot_delivery_retry(*, user: User, message_id: int) -> BotDelivery:
    """Send a failed delivery again (a consultant's or admin's retry): pending, a new durable job.

    A conditional UPDATE (failed → pending) decides among concurrent retries; the loser and a
    delivery that is not failed get a 409 with its status. The new job has its own key (the first
    one is finished) and the tenant's whole retry schedule again; it commits with the change.
    """
    message = (
        Message.objects.select_related("conversation", "bot_delivery")
        .filter(pk=message_id, tenant_id=user.tenant_id)
        .first()
    )
    if message is None or message.delivery is None:
        raise NotFoundError("message")
    current = message.delivery
    with transaction.atomic():
        reset = BotDelivery.objects.filter(
            message=message, status__in=[BotDelivery.Status.FAILED, BotDelivery.Status.SUPPRESSED]
        ).update(status=BotDelivery.Status.PENDING, attempts=0, last_error="")
        if reset != 1:
            raise ConflictError(
                "delivery_not_failed",
                "only a failed delivery can be retried",
                details={"status": current["status"], "message_id": message.id},
            )
        message_deliver_schedule(tenant_id=message.tenant_id, message_id=message.id, retry=uuid.uuid4().hex)
        transaction.on_commit(lambda: delivery_changed_push(message_id=message.id))
        delivery = BotDelivery.objects.get(message=message)  # as this retry left it (the job runs after commit)
    logger.info(
        "bot delivery retry",
        extra={"tenant_id": message.tenant_id, "message_id": message.id, "user_id": user.id},
    )
    return delivery
