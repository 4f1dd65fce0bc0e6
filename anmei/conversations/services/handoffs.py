"""Work a conversation hands to the apps above it, by Celery task name.

conversations sits below the bot gateway (bots) and session intelligence (ai): they read and write
conversations, so conversations must not import them. What a conversation change asks of them is
handed over as a durable job (anmei.jobs) written in the transaction of the change and naming the
owner's task, whose body (in `workers/`) calls the owner's service — the job row is the contract.
Other apps that cause the same work (the gateway's inbound webhook, speech to text, automation's
welcome, a regenerate in the admin) schedule it through these functions too, so each hand-off is
defined once. Policies are settings; the owner decides retries at run time (e.g. a tenant's
gateway countdowns), the job's attempts only bound it.

Reply suggestions are ephemeral (a lost one is superseded by the next message): they go straight
to their task, which coalesces bursts.
"""

from __future__ import annotations

import logging
import uuid

from django.conf import settings

from anmei.conversations.models import Conversation, Message
from anmei.jobs.models import Job
from anmei.jobs.services import job_schedule
from celery_config import app

logger = logging.getLogger("anmei.conversations")

# kind and task of each hand-off (the bot webhook's one-statement path writes AUTO_REPLY_JOB's row itself)
DELIVERY_JOB = {"kind": "bots.delivery", "task": "workers.bots.deliver_message"}
AUTO_REPLY_JOB = {"kind": "bots.auto_reply", "task": "workers.ai.auto_reply"}
SUMMARY_JOB = {"kind": "ai_summary", "task": "workers.ai.summarize"}
SUGGEST_TASK = "workers.ai.suggest"  # no job row: see the module docstring
WELCOME_JOB = {"kind": "automation.conversation_welcome", "task": "workers.registration.conversation_welcome"}
TRANSCRIBE_JOB = {"kind": "asr", "task": "workers.asr.transcribe"}


def message_deliver_schedule(*, tenant_id: int, message_id: int, retry: str = "") -> Job:
    """Send a stored message to its IM customer through the conversation's bot (bots runs it).

    Call inside the transaction that stores the message: the job commits with it and reaches the
    broker after the commit (a lost publish is re-sent by the jobs sweep). Idempotent: one job per
    message, and the gateway's delivery row makes the send happen once. A person's retry of a
    failed delivery names itself (`retry`) and so gets a job of its own.
    """
    return job_schedule(
        **DELIVERY_JOB,
        key=f"message:{message_id}" + (f":retry:{retry}" if retry else ""),
        tenant_id=tenant_id,
        payload={"message_id": message_id},
        # the delivery retries by the tenant's gateway countdowns (up to 10) at each attempt; the
        # job's attempts only bound it, with room for attempts lost with their worker
        max_attempts=settings.BOT_DELIVERY_MAX_ATTEMPTS,
        lease_seconds=settings.BOT_DELIVERY_LEASE_SECONDS,
    )


def auto_reply_schedule(*, message: Message, conversation: Conversation) -> Job | None:
    """In the transaction that stores a customer message: the durable job of its auto-reply (ai runs it).

    Not for a conversation a consultant holds (their console gets the message). Whether anybody
    is online is decided when the job runs, after the message is routed.
    """
    if message.is_blocked or message.sender_type != Message.SenderType.CUSTOMER:
        return None
    if conversation.answerer(consultants_online=False) != Conversation.Answerer.AUTO_REPLY:
        return None  # held by a consultant (their console has it), or ended
    return job_schedule(
        **AUTO_REPLY_JOB,
        key=f"message:{message.id}",
        tenant_id=message.tenant_id,
        payload={"message_id": message.id},
        queue=settings.CELERY_REPLIES_QUEUE,
        max_attempts=settings.BOT_AUTO_REPLY_MAX_ATTEMPTS,
        lease_seconds=settings.BOT_AUTO_REPLY_LEASE_SECONDS,
    )


def conversation_welcome_schedule(*, tenant_id: int, conversation_id: int) -> Job:
    """The durable job that welcomes a customer's later conversation, if the tenant wants it (automation runs it).

    Call in the transaction that opens the conversation; one job per conversation.
    """
    return job_schedule(
        **WELCOME_JOB,
        key=f"conversation:{conversation_id}",
        tenant_id=tenant_id,
        payload={"conversation_id": conversation_id},
        lease_seconds=settings.AUTOMATION_STEP_LEASE_SECONDS,
    )


def voice_transcribe_id_new() -> str:
    """The public id of a voice message's transcription, stored as the message payload's `asr_task_id`."""
    return f"asr_{uuid.uuid4().hex}"


def voice_transcribe_schedule(*, message: Message) -> Job:
    """In the transaction that stores a web voice message: the durable job of its transcription (asr runs it).

    The message payload carries its `asr_task_id` and `media`; the asr worker records the task from
    them when it takes the job (same task, queue, attempts and lease as a bot's voice message), so
    the transcript, its push and the auto-reply it may feed follow the one speech-to-text path.
    """
    asr_task_id = message.payload["asr_task_id"]
    return job_schedule(
        **TRANSCRIBE_JOB,
        key=f"asr:{asr_task_id}",
        tenant_id=message.tenant_id,
        payload={"asr_task_id": asr_task_id, "message_id": message.id},
        queue=settings.CELERY_ASR_QUEUE,
        max_attempts=settings.ASR_MAX_ATTEMPTS,
        retry_countdowns=list(settings.ASR_RETRY_COUNTDOWNS),
        lease_seconds=settings.ASR_LEASE_SECONDS,  # renewed by a heartbeat while the attempt runs
    )


def summary_schedule(*, tenant_id: int, conversation_id: int, generation: int = 1) -> Job:
    """The durable job that writes one generation of an ended conversation's summary (ai runs it)."""
    countdowns = list(settings.AI_SUMMARY_RETRY_COUNTDOWNS)
    return job_schedule(
        **SUMMARY_JOB,
        key=f"ai_summary:{conversation_id}:{generation}",
        tenant_id=tenant_id,
        payload={"conversation_id": conversation_id, "generation": generation},
        max_attempts=len(countdowns) + 1,
        retry_countdowns=countdowns,
        lease_seconds=settings.AI_SUMMARY_LEASE_SECONDS,
    )


def suggestion_request(*, message: Message, conversation: Conversation) -> bool:
    """Ask for reply suggestions on a customer message its consultant sees (call after commit).

    True when the request was sent; its task coalesces a burst into one generation at a time.
    """
    if (
        not settings.AI_SUGGESTIONS_ENABLED
        or message.is_blocked
        or message.sender_type != Message.SenderType.CUSTOMER
        or conversation.status != Conversation.Status.ACTIVE
        or not conversation.consultant_id
    ):
        return False
    try:
        app.send_task(SUGGEST_TASK, args=[message.tenant_id, conversation.id, message.id])
    except Exception:  # noqa: BLE001 - suggestions are a help; the message itself is routed already
        logger.warning(
            "suggestion request failed",
            extra={"tenant_id": message.tenant_id, "conversation_id": conversation.id, "message_id": message.id},
        )
        return False
    return True
