"""The welcome step's message in the customer's conversation."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction

from anmei.ai.gateway import welcome_generate as agent_welcome
from anmei.automation.services.config import automation_settings_get_or_create
from anmei.common import realtime
from anmei.conversations.models import Conversation, Message
from anmei.conversations.services import message_create, message_event
from anmei.conversations.services.handoffs import message_deliver_schedule

logger = logging.getLogger("anmei.automation")


def automation_conversation_welcome(*, conversation_id: int) -> dict[str, Any]:
    """Welcome a customer's later conversation (one they opened after an earlier one ended).

    The tenant's automation settings decide: automation on and `welcome_returning` set. The agent
    writes it (the template when the agent fails), as for a registration. Idempotent: the message's
    external id is per conversation, and a conversation that is no longer waiting for its first
    answer (claimed, ended) is left alone.

    A greeting opens a conversation, it never follows the customer's question (as 企业微信客服's
    welcome, which may only be sent before the user's first message): when the customer wrote
    before the welcome was ready, it is not sent and the question is answered as any other
    (docs/architecture.md, "A returning customer's welcome"). The decision is taken under the
    conversation's row lock, which a customer's message also takes before it is stored, so the
    welcome is either stored before the question or not at all.
    """
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return {"skipped": "conversation gone"}
    config = automation_settings_get_or_create(tenant_id=conversation.tenant_id)
    if not (config.enabled and config.welcome_returning):
        return {"skipped": "welcome for returning customers off"}
    if conversation.status == Conversation.Status.ENDED:
        return {"skipped": "conversation ended"}
    external_id = f"welcome:conversation:{conversation.id}"
    if Message.objects.filter(tenant_id=conversation.tenant_id, external_id=external_id).exists():
        return {"skipped": "already welcomed"}
    outcome = agent_welcome(
        tenant_id=conversation.tenant_id, customer_id=conversation.customer_id, conversation_id=conversation.id
    )
    text, source = (outcome.text, "agent") if outcome.text else (config.welcome_template, "template")
    with transaction.atomic():
        Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        if _customer_wrote(conversation):
            logger.info(
                "returning welcome skipped: the customer wrote first",
                extra={"tenant_id": conversation.tenant_id, "conversation_id": conversation.id},
            )
            return {"skipped": "customer wrote first"}
        message, created = message_create(
            conversation=conversation,
            sender_type=Message.SenderType.BOT,
            type=Message.Type.TEXT,
            content=text,
            payload={"kind": "welcome", "source": source},
            external_id=external_id,
        )
        if created and conversation.bot_instance_id:
            message_deliver_schedule(tenant_id=conversation.tenant_id, message_id=message.id)
    if created:
        realtime.broadcast_to_user(conversation.tenant_id, conversation.customer_id, message_event(message))
    return {"message_id": message.id, "created": created, "source": source}


def _customer_wrote(conversation: Conversation) -> bool:
    return Message.objects.filter(
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.id,
        sender_type=Message.SenderType.CUSTOMER,
        is_blocked=False,
    ).exists()
