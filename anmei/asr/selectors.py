"""Speech to text reads: tenant-scoped task look-up and the transcription's JSON shape (API.md, "Speech to text")."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from anmei.accounts.models import User
from anmei.asr.models import AsrTask
from anmei.common.errors import NotFoundError
from anmei.conversations.models import Message
from anmei.media.links import media_url, media_url_for_payload


def asr_task_get(*, user: User, asr_task_id: str) -> AsrTask:
    """A task of the staff member's tenant; another tenant's id is a 404 (no existence leak)."""
    task = None
    if user.role in (User.Role.CONSULTANT, User.Role.ADMIN):
        task = AsrTask.objects.filter(tenant_id=user.tenant_id, asr_task_id=asr_task_id).first()
    if task is None:
        raise NotFoundError("asr task")
    return task


def asr_task_data(task: AsrTask) -> dict[str, Any]:
    """`{asr_task_id, status, result?|error?, audio_url, timestamp}` with a freshly signed audio_url."""
    data: dict[str, Any] = {"asr_task_id": task.asr_task_id, "status": task.status}
    if task.status == AsrTask.Status.SUCCESS:
        data["result"] = {
            "text": task.text,
            "confidence": task.confidence,
            "language": task.language,
            "duration": task.duration,
        }
    elif task.status == AsrTask.Status.FAILED:
        data["error"] = {"code": task.error_code, "message": task.error_message}
    data["audio_url"] = asr_task_audio_url(task)
    data["timestamp"] = timezone.localtime(task.finished_at or task.updated_at or timezone.now()).isoformat()
    return data


def asr_task_audio_url(task: AsrTask) -> str:
    """The message's playback link (its browser-playable rendition once made), else the task's audio."""
    payload = Message.objects.filter(pk=task.message_id).values_list("payload", flat=True).first()
    media = (payload or {}).get("media")
    if isinstance(media, dict) and media.get("key") == task.media_key:
        return media_url_for_payload(task.tenant_id, payload)
    return media_url(tenant_id=task.tenant_id, key=task.media_key, mime=task.media_mime)
