"""Conversation summaries: one per conversation, written after it ends.

`conversation_end` hands the summary over inside its transaction: a durable job (anmei.jobs,
idempotent by conversation and generation, `conversations.services.handoffs.summary_schedule`)
that runs after commit and first stores the pending row (the API reports an ended conversation
without one as pending). The job asks
the tenant's agent for structured JSON {main_issues, solution, evaluation, follow_up}; a malformed
answer is asked again once, then — like a provider failure, a spent quota or no LLM at all — the
local extractive summary (jieba) is stored instead, marked `model: "local-extractive"`. When the
row is stored the consultants concerned get `summary.ready`.
"""

from __future__ import annotations

import json
import logging

from django.db import IntegrityError, transaction
from django.db.models import F

from anmei.ai.context import message_text
from anmei.ai.extractive import LOCAL_MODEL, summarize_turns
from anmei.ai.gateway import agent_run
from anmei.ai.models import ConversationSummary
from anmei.common import realtime
from anmei.conversations.models import Conversation, ConversationEvent, Message
from anmei.conversations.services.handoffs import summary_schedule

logger = logging.getLogger("anmei.ai")

FIELDS = ("main_issues", "solution", "evaluation", "follow_up")
SUMMARY_PROMPT = (
    "你是医美咨询机构的质检助手。请阅读以下客户与客服的完整对话，输出一个 JSON 对象，且只输出 JSON，"
    '键为 "main_issues"（客户主要问题和需求）、"solution"（顾问给出的解决方案和建议，不要引用机器人的欢迎语）、'
    '"evaluation"（客服处理效果评估）、"follow_up"（后续跟进建议），每个值是一段简短的中文。'
)
LOCAL_TURN_LIMIT = 1000  # the local summary reads at most the newest 1000 turns


def summary_regenerate(*, summary: ConversationSummary) -> ConversationSummary:
    """Write the summary again (admin action): a new generation, pending until its job stores it."""
    with transaction.atomic():
        ConversationSummary.objects.filter(pk=summary.pk).update(
            generation=F("generation") + 1, status=ConversationSummary.Status.PENDING, error=""
        )
        summary.refresh_from_db()
        summary_schedule(
            tenant_id=summary.tenant_id, conversation_id=summary.conversation_id, generation=summary.generation
        )
    return summary


def _summary_row(conversation_id: int) -> ConversationSummary | None:
    """The conversation's summary row, stored pending by the first job that asks for it."""
    summary = ConversationSummary.objects.select_related("conversation").filter(conversation_id=conversation_id).first()
    if summary is not None:
        return summary
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return None
    try:
        with transaction.atomic():
            ConversationSummary.objects.create(conversation=conversation, tenant_id=conversation.tenant_id)
    except IntegrityError:  # a concurrent attempt stored it first
        pass
    return ConversationSummary.objects.select_related("conversation").get(conversation_id=conversation_id)


def summary_parse(text: str | None) -> dict | None:
    """The four fields from a model's answer (JSON, optionally in a ```json fence), or None if malformed."""
    if not text:
        return None
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`")
        body = body[4:] if body.lower().startswith("json") else body
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(body[start : end + 1])
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    parsed = {}
    for field in FIELDS:
        value = data.get(field)
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = "；".join(v.strip() for v in value if v.strip())
        if not isinstance(value, str) or not value.strip():
            return None
        parsed[field] = value.strip()[:4000]
    return parsed


def _local_summary(conversation: Conversation) -> dict:
    messages = list(
        Message.objects.filter(conversation=conversation)
        .only("id", "sender_type", "type", "content", "payload", "is_blocked")
        .order_by("-created_at", "-id")[:LOCAL_TURN_LIMIT]
    )
    turns = []
    for message in reversed(messages):
        text = message_text(message)
        if text is not None:
            turns.append((_speaker(message), text))
    return summarize_turns(turns)


def _speaker(message: Message) -> str:
    """Who said it, as the local summary tells them apart (the welcome is no advice)."""
    if message.sender_type == Message.SenderType.BOT:
        payload = message.payload if isinstance(message.payload, dict) else {}
        return "welcome" if payload.get("kind") == "welcome" else "bot"
    return "customer" if message.sender_type == Message.SenderType.CUSTOMER else "consultant"


def summary_generate(*, conversation_id: int, generation: int) -> ConversationSummary | None:
    """Write and store one generation of a summary; a repeat of a stored generation does nothing."""
    summary = _summary_row(conversation_id)
    if summary is None or summary.generation != generation or summary.status == ConversationSummary.Status.READY:
        return None
    conversation = summary.conversation
    parsed, model, error = None, "", ""
    said_anything = Message.objects.filter(
        conversation=conversation, sender_type=Message.SenderType.CUSTOMER, is_blocked=False
    ).exists()
    for _attempt in range(2 if said_anything else 0):  # a malformed answer is asked again once
        outcome = agent_run(
            tenant_id=conversation.tenant_id,
            customer_id=conversation.customer_id,
            conversation_id=conversation.id,
            purpose="summary",
            query="",
            system_prompt=SUMMARY_PROMPT,
            json_mode=True,
            bot_id=conversation.bot_instance_id,
        )
        if outcome.text is None:
            error = outcome.error
            break
        parsed = summary_parse(outcome.text)
        if parsed is not None:
            model = outcome.model or outcome.provider
            break
        error = "malformed summary answer"
    keywords: list[str] = []
    if parsed is None:
        local = _local_summary(conversation)
        keywords = local.pop("keywords")
        parsed, model = local, LOCAL_MODEL
    with transaction.atomic():
        stored = ConversationSummary.objects.filter(
            pk=summary.pk, generation=generation, status=ConversationSummary.Status.PENDING
        ).update(
            status=ConversationSummary.Status.READY, model=model[:128], error=error[:500], keywords=keywords, **parsed
        )
        if not stored:  # a regenerate superseded this generation while we wrote it
            return None
        summary.refresh_from_db()
        event = {"type": "summary.ready", "conversation_id": conversation.id, "summary": summary.as_dict()}
        event["model"] = summary.model
        recipients = _concerned(conversation)
        tenant_id = conversation.tenant_id
        transaction.on_commit(lambda: _push(tenant_id, recipients, event))
    logger.info(
        "conversation summary stored",
        extra={
            "tenant_id": conversation.tenant_id,
            "conversation_id": conversation.id,
            "model": summary.model,
            "fallback_reason": error,
        },
    )
    return summary


def summary_failed(*, conversation_id: int, generation: int, error: str) -> None:
    """The job ran out of attempts (the database kept failing): the summary is marked failed."""
    if generation == 1:
        _summary_row(conversation_id)  # the attempts may all have failed before storing it
    ConversationSummary.objects.filter(
        conversation_id=conversation_id, generation=generation, status=ConversationSummary.Status.PENDING
    ).update(status=ConversationSummary.Status.FAILED, error=error[:500])


def _concerned(conversation: Conversation) -> set[int]:
    """The conversation's consultant and every staff member who acted on it (claimed, transferred, ended)."""
    actors = ConversationEvent.objects.filter(conversation=conversation, actor__isnull=False).values_list(
        "actor_id", flat=True
    )
    from anmei.accounts.models import User

    staff = User.objects.filter(
        pk__in=set(actors) | {conversation.consultant_id} - {None},
        tenant_id=conversation.tenant_id,
        role__in=(User.Role.CONSULTANT, User.Role.ADMIN),
    ).values_list("id", flat=True)
    return set(staff)


def _push(tenant_id: int, user_ids: set[int], event: dict) -> None:
    for user_id in user_ids:  # stored: a console that missed the push reads it with GET …/summary
        realtime.broadcast_to_user(tenant_id, user_id, event)
