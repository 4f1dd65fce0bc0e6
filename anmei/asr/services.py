"""Speech to text writes: create a voice message's task, run an attempt, fail it, retry it by hand.

A task moves pending → processing → success | failed. An attempt claims the task with a conditional
UPDATE and commits before any decoding or model work; the result is written in its own short
transaction, which also puts the transcript on the message (so message search finds it) and
writes the auto-reply's durable job; only the realtime push follows the commit.
"""

from __future__ import annotations

import logging
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from anmei.asr.audio import BadAudio, decode_to_16k_mono, pcm_to_ogg_opus
from anmei.asr.backends import AsrError, Transcript, asr_backend
from anmei.asr.models import AsrTask
from anmei.asr.selectors import asr_task_data
from anmei.common import realtime
from anmei.common.errors import ApplicationError, ConflictError
from anmei.conversations.models import Conversation, Message
from anmei.conversations.services import message_media_play_set, message_transcript_set
from anmei.conversations.services.handoffs import auto_reply_schedule, voice_transcribe_id_new
from anmei.jobs.services import job_reschedule, job_schedule
from anmei.media.services import media_read, media_store_rendition
from anmei.notifications.services import admin_alert_raise

logger = logging.getLogger("anmei.asr")

S = AsrTask.Status
TRANSCRIBE_TASK = "workers.asr.transcribe"
PLAYABLE_FROM = ("amr", "silk")  # sniffed voice types browsers cannot play: they get an Ogg/Opus rendition
_encoder: ThreadPoolExecutor | None = None  # one per worker process, for those renditions


def asr_task_id_new() -> str:
    return voice_transcribe_id_new()


def _task_row(*, message: Message, asr_task_id: str, media: dict[str, Any], job_id: int | None = None) -> AsrTask:
    return AsrTask.objects.create(
        tenant_id=message.tenant_id,
        asr_task_id=asr_task_id,
        message=message,
        conversation_id=message.conversation_id,
        media_key=media["key"],
        media_mime=media["mime"],
        backend=settings.ASR_BACKEND,
        job_id=job_id,
    )


def asr_task_create(*, message: Message, asr_task_id: str, media: dict[str, Any]) -> AsrTask:
    """Record the transcription of a just-stored voice message and schedule it on the `asr` queue.

    Call inside the transaction that stores the message: the task row, its durable job and the
    message commit together (one task per message: the one-to-one constraint decides).
    """
    task = _task_row(message=message, asr_task_id=asr_task_id, media=media)
    job = job_schedule(
        kind="asr",
        key=f"asr:{asr_task_id}",
        task=TRANSCRIBE_TASK,
        tenant_id=message.tenant_id,
        payload={"asr_task_id": asr_task_id},
        queue=settings.CELERY_ASR_QUEUE,
        max_attempts=settings.ASR_MAX_ATTEMPTS,
        retry_countdowns=list(settings.ASR_RETRY_COUNTDOWNS),
        lease_seconds=settings.ASR_LEASE_SECONDS,  # renewed by a heartbeat while the attempt runs
    )
    AsrTask.objects.filter(pk=task.pk).update(job_id=job.id)
    task.job_id = job.id
    logger.info(
        "asr task created",
        extra={"tenant_id": task.tenant_id, "asr_task_id": asr_task_id, "message_id": message.id, "job_id": job.id},
    )
    return task


def asr_task_adopt(*, asr_task_id: str, message_id: int, tenant_id: int, job_id: int) -> AsrTask | None:
    """The task of a voice message whose transcription was handed over as a job alone (a web upload).

    conversations sits below asr, so it writes the durable job (`voice_transcribe_schedule`) with
    the message and this records the task from the message's payload when a worker takes it. Returns
    the stored task (a repeat or a race finds the first); None when the message is gone or is not
    that voice message.
    """
    task = AsrTask.objects.filter(asr_task_id=asr_task_id).first()
    if task is not None:
        return task
    message = Message.objects.filter(pk=message_id, tenant_id=tenant_id).first()
    media = (message.payload or {}).get("media") if message is not None else None
    if message is None or message.payload.get("asr_task_id") != asr_task_id or not isinstance(media, dict):
        return None
    try:
        with transaction.atomic():
            task = _task_row(message=message, asr_task_id=asr_task_id, media=media, job_id=job_id)
    except IntegrityError:
        return AsrTask.objects.filter(asr_task_id=asr_task_id).first()
    logger.info(
        "asr task created",
        extra={"tenant_id": tenant_id, "asr_task_id": asr_task_id, "message_id": message_id, "job_id": job_id},
    )
    return task


def _event(task: AsrTask, event_type: str) -> dict[str, Any]:
    body = asr_task_data(task)
    return {"type": event_type, "message_id": task.message_id, "conversation_id": task.conversation_id, **body}


def _push(task: AsrTask, event: dict[str, Any]) -> None:
    """Send an event to the consultants concerned: the assigned one, else the tenant's console."""
    conversation = Conversation.objects.filter(pk=task.conversation_id, tenant_id=task.tenant_id).first()
    # the stored task is the record: a console that missed the push reads it on reload
    if conversation and conversation.answerer(consultants_online=True) == Conversation.Answerer.CONSULTANT:
        realtime.broadcast_to_user(task.tenant_id, conversation.consultant_id, event)
    else:
        realtime.broadcast_to_console(task.tenant_id, event)


def _auto_reply_hand_off(task: AsrTask) -> bool:
    """In the transaction that records the outcome: the durable auto-reply job of the voice message.

    `message_route` leaves voice messages with a transcription pending to this step, so the reply
    answers what was said instead of an empty voice message. The job row commits with the
    transcript (a crash or a Redis outage after the commit cannot lose it); presence is not read
    here: the job checks, when it runs, that nobody is online and nobody took the conversation.
    """
    message = Message.objects.select_related("conversation").filter(pk=task.message_id).first()
    if message is None or message.is_blocked:
        return False
    return auto_reply_schedule(message=message, conversation=message.conversation) is not None


def _after_outcome(task_pk: int) -> None:
    """After the outcome's commit: only the realtime push (every piece of work is a job row already)."""
    task = AsrTask.objects.get(pk=task_pk)
    _push(task, _event(task, "asr.result"))


def _record_error(task: AsrTask, error: AsrError) -> None:
    AsrTask.objects.filter(pk=task.pk).update(
        status=S.PENDING if error.transient else S.PROCESSING,
        error_code=error.code,
        error_message=error.message[:2000],
        updated_at=timezone.now(),
    )


def asr_task_process(*, asr_task_id: str, attempt: int = 1) -> AsrTask | None:
    """Run one transcription attempt; raise AsrError (with `transient`) when it does not succeed.

    A task already succeeded is left alone (a redelivered or duplicated message does nothing).
    The error is recorded on the task before it propagates, so the final failure can name it.
    """
    task = AsrTask.objects.filter(asr_task_id=asr_task_id).first()
    if task is None or task.status == S.SUCCESS:
        return task
    now = timezone.now()
    claimed = (
        AsrTask.objects.filter(pk=task.pk)
        .exclude(status=S.SUCCESS)
        .update(status=S.PROCESSING, attempts=attempt, started_at=now, updated_at=now, error_code="", error_message="")
    )
    if not claimed:
        return task
    task.refresh_from_db()
    _push(task, _event(task, "asr.processing"))
    log = {"tenant_id": task.tenant_id, "asr_task_id": asr_task_id, "message_id": task.message_id, "attempt": attempt}
    started = time.perf_counter()
    try:
        transcript, decode_ms = _transcribe(task)
    except AsrError as error:
        _record_error(task, error)
        logger.warning("asr attempt failed", extra={**log, "code": error.code, "transient": error.transient})
        raise
    total_ms = (time.perf_counter() - started) * 1000
    with transaction.atomic():
        AsrTask.objects.filter(pk=task.pk).update(
            status=S.SUCCESS,
            text=transcript.text,
            confidence=transcript.confidence,
            language=transcript.language,
            duration=transcript.duration,
            error_code="",
            error_message="",
            finished_at=timezone.now(),
            model=asr_backend().model_name[-200:],
            backend=settings.ASR_BACKEND,
            updated_at=timezone.now(),
        )
        message_transcript_set(
            message_id=task.message_id,
            text=transcript.text,
            asr={
                "status": S.SUCCESS,
                "confidence": transcript.confidence,
                "language": transcript.language,
                "duration": transcript.duration,
            },
        )
        _auto_reply_hand_off(task)
        transaction.on_commit(lambda: _after_outcome(task.pk), robust=True)
    logger.info(
        "asr task succeeded",
        extra={
            **log,
            "audio_s": transcript.duration,
            "decode_ms": round(decode_ms, 1),
            "duration_ms": round(total_ms, 1),
            "chars": len(transcript.text),
        },
    )
    return AsrTask.objects.get(pk=task.pk)


def _playable_start(task: AsrTask, *, ext: str, samples: Any) -> Future | None:
    """Begin the Ogg/Opus rendition of AMR/SILK voice (browsers cannot play those), made once per message.

    Reuses the samples this attempt decoded for transcription and encodes them on a thread while
    the model transcribes, so the rendition that `asr.result` links adds little to the wait (the
    encoder holds the GIL part of the time: ~10 ms for 10 s of voice, `pcm_to_ogg_opus`). None
    when the voice needs no rendition or its message already has one (a redelivered or retried
    attempt).
    """
    if ext not in PLAYABLE_FROM:
        return None
    payload = Message.objects.filter(pk=task.message_id).values_list("payload", flat=True).first()
    media = (payload or {}).get("media")
    if not isinstance(media, dict) or media.get("key") != task.media_key or media.get("play"):
        return None
    global _encoder
    if _encoder is None:  # made in the worker process itself: threads do not survive the prefork
        _encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="asr-opus")
    return _encoder.submit(pcm_to_ogg_opus, samples)


def _playable_store(task: AsrTask, encoding: Future | None, started: float) -> None:
    """Store the rendition beside the original (`<key>.play.ogg`, same tenant key and encryption) and
    record it as the message payload's `media.play`, which `media_url` then signs. A failure costs
    playback only, never the transcription."""
    from celery.exceptions import SoftTimeLimitExceeded

    if encoding is None:
        return
    log = {"tenant_id": task.tenant_id, "asr_task_id": task.asr_task_id, "message_id": task.message_id}
    try:
        ogg = encoding.result(timeout=settings.ASR_DECODE_TIMEOUT_SECONDS)
        key = media_store_rendition(tenant_id=task.tenant_id, key=task.media_key, suffix="play.ogg", data=ogg)
        message_media_play_set(message_id=task.message_id, play={"key": key, "mime": "audio/ogg", "size": len(ogg)})
    except SoftTimeLimitExceeded:
        raise
    except Exception as exc:  # noqa: BLE001 - playback is a convenience; the transcription goes on
        logger.warning("asr playable rendition failed", extra={**log, "error": f"{type(exc).__name__}: {exc}"[:300]})
        return
    logger.info(
        "asr playable rendition stored",
        extra={**log, "size": len(ogg), "duration_ms": round((time.perf_counter() - started) * 1000, 1)},
    )


def _transcribe(task: AsrTask) -> tuple[Transcript, float]:
    from celery.exceptions import SoftTimeLimitExceeded

    try:
        data = media_read(tenant_id=task.tenant_id, key=task.media_key)
    except ApplicationError as exc:
        transient = exc.status_code >= 500
        raise AsrError(
            "ASR_AUDIO_UNAVAILABLE" if transient else "ASR_BAD_AUDIO", exc.message, transient=transient
        ) from exc
    started = time.perf_counter()
    ext = task.media_key.rsplit(".", 1)[-1]
    try:
        samples = decode_to_16k_mono(data, ext=ext)
    except BadAudio as exc:
        # The tenant sees the fixed sentence; decoder output and header values are for our logs.
        logger.warning(
            "asr bad audio",
            extra={"tenant_id": task.tenant_id, "asr_task_id": task.asr_task_id, "detail": exc.detail[:500]},
        )
        raise AsrError("ASR_BAD_AUDIO", exc.message, transient=False) from exc
    except subprocess.TimeoutExpired as exc:
        raise AsrError("ASR_TIMEOUT", "decoding the audio took too long", transient=True) from exc
    decode_ms = (time.perf_counter() - started) * 1000
    encoding, encoding_started = _playable_start(task, ext=ext, samples=samples), time.perf_counter()
    try:
        backend = asr_backend()
        started = time.perf_counter()
        transcript = backend.transcribe(samples, language=settings.ASR_LANGUAGE or None)
        AsrTask.objects.filter(pk=task.pk).update(transcribe_ms=round((time.perf_counter() - started) * 1000, 1))
        return transcript, decode_ms
    except AsrError:
        raise
    except SoftTimeLimitExceeded as exc:
        raise AsrError("ASR_TIMEOUT", "transcription took longer than the time limit", transient=True) from exc
    except Exception as exc:  # noqa: BLE001 - a model or runtime failure: retry, then fail with the code
        raise AsrError("ASR_BACKEND_ERROR", f"{type(exc).__name__}: {exc}"[:500], transient=True) from exc
    finally:
        _playable_store(task, encoding, encoding_started)


def asr_task_fail(*, asr_task_id: str, error: str) -> None:
    """Mark a task failed for good (the job's attempts are spent, or the error is permanent).

    Runs inside the transaction that fails the job. The code is the last one an attempt recorded;
    a task whose workers all died mid-attempt has none and fails as ASR_WORKER_LOST.
    """
    task = AsrTask.objects.filter(asr_task_id=asr_task_id).first()
    if task is None or task.status == S.SUCCESS:
        return
    code = task.error_code or ("ASR_WORKER_LOST" if "worker lost" in error else "ASR_BACKEND_ERROR")
    message = task.error_message or error
    AsrTask.objects.filter(pk=task.pk).update(
        status=S.FAILED,
        error_code=code,
        error_message=message[:2000],
        finished_at=timezone.now(),
        updated_at=timezone.now(),
    )
    if Message.objects.filter(pk=task.message_id).exists():
        message_transcript_set(message_id=task.message_id, text=None, asr={"status": S.FAILED, "error_code": code})
    task.refresh_from_db()
    _auto_reply_hand_off(task)
    admin_alert_raise(
        tenant_id=task.tenant_id,
        source="asr",
        code=code.lower(),
        message=f"speech to text failed for voice message {task.message_id}: {code}",
        dedupe_key=f"asr:{task.asr_task_id}:{int(task.finished_at.timestamp()) if task.finished_at else 0}",
        details={"asr_task_id": task.asr_task_id, "message_id": task.message_id, "code": code},
    )
    transaction.on_commit(lambda: _after_outcome(task.pk), robust=True)
    logger.warning("asr task failed", extra={"tenant_id": task.tenant_id, "asr_task_id": asr_task_id, "code": code})


def asr_task_retry(*, task: AsrTask, force: bool = False) -> AsrTask:
    """Run a task again from its first attempt: a failed one always, a succeeded one only with `force`.

    A task still pending or processing is a 409: its job is alive and will finish.
    """
    if task.status in (S.PENDING, S.PROCESSING):
        raise ConflictError("asr_task_in_progress", "the task is still running", details={"status": task.status})
    if task.status == S.SUCCESS and not force:
        raise ConflictError(
            "asr_task_succeeded",
            "the task has succeeded; send force=true to transcribe again",
            details={"status": task.status},
        )
    with transaction.atomic():
        updated = AsrTask.objects.filter(pk=task.pk, status=task.status).update(
            status=S.PENDING, error_code="", error_message="", finished_at=None, updated_at=timezone.now()
        )
        if not updated:
            raise ConflictError("asr_task_changed", "the task changed meanwhile; reload it")
        if task.job_id is None or not job_reschedule(job_id=task.job_id):
            raise ConflictError("asr_task_in_progress", "an attempt is still running", details={"status": task.status})
    logger.info(
        "asr task retried", extra={"tenant_id": task.tenant_id, "asr_task_id": task.asr_task_id, "force": force}
    )
    return AsrTask.objects.get(pk=task.pk)
