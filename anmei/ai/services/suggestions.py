"""Live reply suggestions for the consultant (客服话术推荐).

A customer message routed to its consultant sends the `workers.ai.suggest` task after commit
(`conversations.services.handoffs.suggestion_request`: conversations sits below ai). At most one
generation runs per conversation and a burst of messages is coalesced: each task records the
newest message id in Redis and only the one that takes the per-conversation lock generates; it
answers the newest message, and before letting the lock go checks atomically that no newer
message came in meanwhile (else it goes round again); the others end at once. Suggestions are ephemeral — a
generation lost with a killed worker is not redone; the lock expires and the next message starts
a fresh one.

Suggestions: the tenant's canned responses whose keywords match (kind `template`) first, then the
agent's (`personalised`, `solution`, `comfort`), 1–3 in all, pushed as `suggestion.new` to the
assigned consultant only. With no LLM, a spent quota or a failing provider, the canned responses
alone are the offline fallback. A streaming provider sends `suggestion.delta` fragments first.
"""

from __future__ import annotations

import json
import logging
import uuid

from django.conf import settings

from anmei.ai.gateway import agent_run
from anmei.ai.selectors import canned_responses_matching
from anmei.common import realtime
from anmei.common.redis import get_redis, tenant_key
from anmei.conversations.models import Conversation, Message

logger = logging.getLogger("anmei.ai")

KINDS = ("template", "personalised", "solution", "comfort")
MAX_SUGGESTIONS = 3
SUGGEST_PROMPT = (
    "你是医美咨询机构的客服助手，为正在接待客户的人工客服推荐回复话术。根据对话，输出一个 JSON 对象，"
    '且只输出 JSON：{"suggestions": [{"kind": 类型, "text": 话术}]}，1 到 2 条；'
    '类型取 "personalised"（个性化回复建议）、"solution"（问题解决方案）或 "comfort"（情感安抚话术）。'
)

# KEYS: latest, lock. ARGV: the message id answered, the lock token.
# Releases the lock only if no newer message arrived; otherwise returns the newer id to answer.
_RELEASE = """
local latest = redis.call('GET', KEYS[1])
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
if (not latest) or latest == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('DEL', KEYS[2])
  return 0
end
redis.call('EXPIRE', KEYS[2], tonumber(ARGV[3]))
return tonumber(latest)
"""


def _keys(tenant_id: int, conversation_id: int) -> tuple[str, str]:
    return (
        tenant_key(tenant_id, "suggest", conversation_id, "latest"),
        tenant_key(tenant_id, "suggest", conversation_id, "lock"),
    )


def suggestion_take(*, tenant_id: int, conversation_id: int, message_id: int) -> int:
    """The task body: note the newest message; the task that takes the lock generates until none is newer.

    Returns the generations this task ran (0 when another one holds the conversation: it answers
    this newer message next).
    """
    latest_key, lock_key = _keys(tenant_id, conversation_id)
    token = uuid.uuid4().hex
    pipe = get_redis().pipeline()
    pipe.set(latest_key, message_id, ex=settings.AI_SUGGESTION_LOCK_SECONDS * 2)
    pipe.set(lock_key, token, nx=True, ex=settings.AI_SUGGESTION_LOCK_SECONDS)
    _, acquired = pipe.execute()
    if not acquired:
        return 0
    return suggestion_run(tenant_id=tenant_id, conversation_id=conversation_id, token=token)


def suggestion_run(*, tenant_id: int, conversation_id: int, token: str) -> int:
    """The task body: answer the newest pending message until none is newer; return generations run."""
    latest_key, lock_key = _keys(tenant_id, conversation_id)
    client = get_redis()
    release = client.register_script(_RELEASE)
    message_id = client.get(latest_key)
    runs = 0
    while message_id:
        if client.get(lock_key) != token:
            return runs  # our lock expired and someone else took over
        message_id = int(message_id)
        try:
            suggestions_push(tenant_id=tenant_id, message_id=message_id)
        except Exception:  # noqa: BLE001 - ephemeral help: log it, and never keep the lock past a failure
            logger.exception(
                "suggestion generation failed",
                extra={"tenant_id": tenant_id, "conversation_id": conversation_id, "message_id": message_id},
            )
        runs += 1
        outcome = release(keys=[latest_key, lock_key], args=[message_id, token, settings.AI_SUGGESTION_LOCK_SECONDS])
        message_id = outcome if outcome and outcome > 0 else None
    return runs


def _parse(text: str | None) -> list[dict]:
    """The suggestions in the model's answer: the asked-for JSON, or its prose as one suggestion.

    Some models ignore JSON mode and answer in plain words; that answer is still a usable draft, so
    it becomes one `personalised` suggestion rather than none. A reply that looks like JSON but does
    not parse (a truncated stream) yields nothing: showing braces to a consultant helps no one.
    """
    if not text or not text.strip():
        return []
    start, end = text.find("{"), text.rfind("}")
    if start < 0:
        return [{"kind": "personalised", "text": text.strip()[:1000]}]
    try:
        data = json.loads(text[start : end + 1])
    except ValueError:
        return []
    items = data.get("suggestions") if isinstance(data, dict) else None
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and isinstance(item.get("text"), str) and item["text"].strip():
            kind = item.get("kind") if item.get("kind") in KINDS[1:] else "personalised"
            out.append({"kind": kind, "text": item["text"].strip()[:1000]})
    return out


def suggestions_generate(*, conversation: Conversation, message: Message | None, on_delta=None) -> list[dict]:
    """1–3 suggestions for answering `message` (the newest customer message when None)."""
    if message is None:
        message = (
            Message.objects.filter(conversation=conversation, sender_type=Message.SenderType.CUSTOMER, is_blocked=False)
            .order_by("-created_at", "-id")
            .first()
        )
    text = message.content if message is not None else ""
    templates = [
        {"kind": "template", "text": r.text}
        for r in canned_responses_matching(tenant_id=conversation.tenant_id, text=text, limit=MAX_SUGGESTIONS)
    ]
    outcome = agent_run(
        tenant_id=conversation.tenant_id,
        customer_id=conversation.customer_id,
        conversation_id=conversation.id,
        purpose="suggestion",
        query="",
        system_prompt=SUGGEST_PROMPT,
        json_mode=True,
        on_delta=on_delta,
        bot_id=conversation.bot_instance_id,
    )
    generated = _parse(outcome.text)
    keep_templates = templates[: MAX_SUGGESTIONS - min(len(generated), 2)] if generated else templates
    return (keep_templates + generated)[:MAX_SUGGESTIONS]


def suggestions_push(*, tenant_id: int, message_id: int) -> list[dict]:
    """Generate for one message and push `suggestion.new` to the conversation's consultant only."""
    message = Message.objects.select_related("conversation").filter(pk=message_id, tenant_id=tenant_id).first()
    if message is None:
        return []
    conversation = message.conversation
    if conversation.status != Conversation.Status.ACTIVE or not conversation.consultant_id:
        return []
    consultant_id = conversation.consultant_id

    def delta(fragment: str) -> None:
        _push_quietly(
            tenant_id,
            consultant_id,
            {
                "type": "suggestion.delta",
                "conversation_id": conversation.id,
                "message_id": message.id,
                "delta": fragment,
            },
        )

    suggestions = suggestions_generate(conversation=conversation, message=message, on_delta=delta)
    if suggestions:
        _push_quietly(
            tenant_id,
            consultant_id,
            {
                "type": "suggestion.new",
                "conversation_id": conversation.id,
                "message_id": message.id,
                "suggestions": suggestions,
            },
        )
    logger.info(
        "suggestions pushed",
        extra={
            "tenant_id": tenant_id,
            "conversation_id": conversation.id,
            "message_id": message.id,
            "count": len(suggestions),
        },
    )
    return suggestions


def _push_quietly(tenant_id: int, user_id: int, event: dict) -> None:
    realtime.broadcast_to_user(tenant_id, user_id, event)  # a lost suggestion is not worth a retry
