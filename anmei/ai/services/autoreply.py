"""Auto-replies: answering a customer message nobody is online for (rule → agent → away message).

The job is scheduled with the message (`conversations.services.handoffs.auto_reply_schedule`, by
the bot webhook, the web chat and speech to text) and runs `workers.ai.auto_reply`, which calls
`auto_reply_if_unanswered` here. The reply is stored once per customer message and goes back
through the tenant's bot gateway (IM customers) or over WebSocket (web customers).
"""

from __future__ import annotations

import logging

from django.db import transaction

from anmei.ai.gateway import reply_generate
from anmei.bots.models import BotInstance
from anmei.common import realtime
from anmei.common.presence import online_user_ids
from anmei.conversations.models import Conversation, Message
from anmei.conversations.services import conversation_settings_get_or_create, message_create, message_event
from anmei.conversations.services.handoffs import message_deliver_schedule
from anmei.jobs.models import Job
from anmei.jobs.services import JobRetry
from anmei.notifications.services import admin_alert_raise

logger = logging.getLogger("anmei.ai")


def auto_reply_job_failed(job, error: str) -> None:
    """`on_failed` of an auto-reply job: the customer got no answer; tell the tenant's admins."""
    message_id = job.payload["message_id"]
    admin_alert_raise(
        tenant_id=job.tenant_id,
        source="bot_auto_reply",
        code="auto_reply_failed",
        message=f"no auto-reply could be made for customer message {message_id} after {job.attempts} attempts",
        dedupe_key=f"auto_reply:{message_id}",
        details={"message_id": message_id, "last_error": error[:500]},
    )


def auto_reply_if_unanswered(*, message_id: int, wait_for_welcome: bool = True) -> Message | None:
    """The auto-reply job: answer unless a consultant took the conversation or consultants are online.

    `wait_for_welcome` false (the job's last attempt) sends an away message even if the welcome is
    still on its way: late is better than never.
    """
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None:
        return None
    conversation = message.conversation
    if conversation.answerer(consultants_online=False) != Conversation.Answerer.AUTO_REPLY:
        return None  # taken (or ended) since the message came: its consultant answers
    try:
        online = bool(online_user_ids(tenant_id=message.tenant_id))
    except Exception:  # noqa: BLE001 - presence unknown (Redis down): the customer gets an answer
        online = False
    if conversation.answerer(consultants_online=online) != Conversation.Answerer.AUTO_REPLY:
        return None
    return auto_reply_create(message_id=message_id, wait_for_welcome=wait_for_welcome)


def _rule_reply(bot: BotInstance | None, text: str) -> tuple[str | None, str]:
    """The first matching keyword rule's reply and its keyword (statistics count keyword hits)."""
    for rule in (bot.auto_reply_rules if bot else None) or []:
        if isinstance(rule, dict) and rule.get("keyword") and rule.get("reply") and str(rule["keyword"]) in text:
            return str(rule["reply"]), str(rule["keyword"])
    return None, ""


def _ai_reply(message: Message) -> str | None:
    """The tenant's agent answers through the context builder; None (agent off, failing, over quota) → away."""
    return reply_generate(
        tenant_id=message.tenant_id,
        customer_id=message.conversation.customer_id,
        conversation_id=message.conversation_id,
        text=message.content,
        bot_id=message.conversation.bot_instance_id,
    )


# The registration automation's job kinds (anmei.accounts REGISTRATION_JOB, anmei.automation JOB_KIND):
# read by name, as the hand-off rule wants (automation sits above this app).
_WELCOME_JOB_KINDS = ("automation.start", "automation")
WELCOME_WAIT_SECONDS = 2.0


def _welcome_pending(conversation: Conversation) -> bool:
    """Is the customer's registration welcome still on its way (not stored yet, its run's jobs unfinished)?"""
    customer_id = conversation.customer_id
    if Message.objects.filter(tenant_id=conversation.tenant_id, external_id=f"welcome:{customer_id}").exists():
        return False
    unfinished = Job.objects.filter(
        tenant_id=conversation.tenant_id,
        kind__in=_WELCOME_JOB_KINDS,
        state__in=(Job.State.PENDING, Job.State.RUNNING),
    )
    return (
        unfinished.filter(kind="automation.start", key=f"customer:{customer_id}").exists()
        or unfinished.filter(kind="automation", payload__customer_id=customer_id).exists()
    )


def _away_already_sent(conversation: Conversation) -> bool:
    return Message.objects.filter(
        conversation_id=conversation.id, sender_type=Message.SenderType.BOT, payload__source="away"
    ).exists()


def auto_reply_create(*, message_id: int, wait_for_welcome: bool = True) -> Message | None:
    """Answer a customer message nobody is online for: keyword rule, else AI gateway, else away message.

    The away message is sent at most once per conversation, and only after the customer's
    registration welcome where one is on its way (the job retries until it is stored). Stored once
    per customer message (external id `autoreply:<id>`), then delivered through the
    bot (IM customers) or pushed over WebSocket (web customers).
    """
    message = Message.objects.select_related("conversation").filter(pk=message_id).first()
    if message is None or message.is_blocked or message.sender_type != Message.SenderType.CUSTOMER:
        return None
    conversation_settings = conversation_settings_get_or_create(tenant_id=message.tenant_id)
    if not conversation_settings.auto_reply_enabled:
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
            away_message = bot.away_message if bot and bot.away_message else conversation_settings.away_message
            text, source = away_message, "away"
            # the away message comes after the welcome, never before it
            if wait_for_welcome and _welcome_pending(conversation):
                raise JobRetry("the welcome is not stored yet", countdown=WELCOME_WAIT_SECONDS)
        with transaction.atomic():
            if source == "away":
                # Once per conversation: the conversation's row lock makes concurrent messages take turns.
                Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
                if _away_already_sent(conversation):
                    return None
            reply, created = message_create(
                conversation=conversation,
                sender_type=Message.SenderType.BOT,
                type=Message.Type.TEXT,
                content=text,
                payload={"auto_reply": True, "in_reply_to": message.id, "source": source}
                | ({"keyword": keyword} if source == "rule" else {}),
                external_id=external_id,
            )
    if conversation.bot_instance_id:
        with transaction.atomic():  # idempotent: one delivery job per reply, however often this runs
            message_deliver_schedule(tenant_id=reply.tenant_id, message_id=reply.id)
    elif created:
        event = message_event(reply)
        realtime.broadcast_to_user(message.tenant_id, conversation.customer_id, event)  # stored: seen on reload
    return reply
