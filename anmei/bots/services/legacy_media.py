"""Bring round-one bot uploads into the media service (`manage.py bot_media_import`).

Before the media service, the bot webhook wrote uploads as plain files under BOT_MEDIA_ROOT
(`t<tenant>/<yyyy/mm/dd>/<uuid><client suffix>`) and recorded `payload.file = {path, name, size,
content_type}` on the message; nothing could play or transcribe them. This stores each such file
through the media service (type sniffed, size-checked, encrypted, tenant-keyed), records
`payload.media` as new uploads have it, gives a voice message its AsrTask and durable job (so it
is transcribed once and, for AMR/SILK, gets its playable rendition), and deletes the plain file.

Idempotent and resumable: a message that has `payload.media` is skipped; each message commits on
its own. A path outside the message's own tenant directory is refused (never read).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from anmei.asr.services import asr_task_create, asr_task_id_new
from anmei.common.errors import ApplicationError
from anmei.conversations.models import Message
from anmei.media.services import media_delete, media_store

logger = logging.getLogger("anmei.bots")

KINDS = (Message.Type.VOICE, Message.Type.IMAGE, Message.Type.FILE)


def _legacy_path(root: Path, message: Message) -> Path | None:
    """The plain file a round-one message names, if it lies inside that message's tenant directory."""
    relative = str((message.payload.get("file") or {}).get("path") or "")
    tenant_dir = (root / f"t{message.tenant_id}").resolve()
    path = (root / relative).resolve()
    return path if relative and path.is_relative_to(tenant_dir) else None


def bot_media_import(*, root: Path | None = None, tenant_id: int | None = None, dry_run: bool = False) -> dict:
    """Import every round-one upload (optionally of one tenant); return counts by outcome."""
    root = Path(root or settings.BOT_MEDIA_ROOT)
    messages = Message.objects.filter(type__in=KINDS, payload__has_key="file").exclude(payload__has_key="media")
    if tenant_id is not None:
        messages = messages.filter(tenant_id=tenant_id)
    counts = {"imported": 0, "transcribing": 0, "missing": 0, "refused": 0, "rejected": 0}
    for message in messages.order_by("id").iterator():
        outcome = _import_one(root, message, dry_run=dry_run)
        counts[outcome] += 1
        if outcome == "imported" and message.type == Message.Type.VOICE:
            counts["transcribing"] += 1
    logger.info("bot media import", extra={"tenant_id": tenant_id, "dry_run": dry_run, **counts})
    return counts


def _import_one(root: Path, message: Message, *, dry_run: bool) -> str:
    log = {"tenant_id": message.tenant_id, "message_id": message.id}
    path = _legacy_path(root, message)
    if path is None:
        logger.warning("bot media import refused a path outside its tenant", extra=log)
        return "refused"
    if not path.is_file():
        return "missing"
    if dry_run:
        return "imported"
    try:
        media = media_store(tenant_id=message.tenant_id, kind=message.type, upload=path.read_bytes()).as_payload()
    except ApplicationError as exc:  # too large, not a file of its kind: leave it for a person to look at
        logger.warning("bot media import rejected a file", extra={**log, "code": exc.code})
        return "rejected"
    stored = False
    with transaction.atomic():
        current = Message.objects.select_for_update().get(pk=message.pk)
        if "media" not in current.payload:  # a concurrent import of the same message got there first
            payload: dict[str, Any] = {**current.payload, "media": media}
            if current.type == Message.Type.VOICE:
                payload["asr_task_id"] = asr_task_id_new()
            Message.objects.filter(pk=current.pk).update(payload=payload)
            current.payload = payload
            if current.type == Message.Type.VOICE:
                asr_task_create(message=current, asr_task_id=payload["asr_task_id"], media=media)
            stored = True
    if not stored:
        media_delete(tenant_id=message.tenant_id, key=media["key"])
        return "imported"
    path.unlink(missing_ok=True)  # the plain copy goes: only the encrypted one stays
    logger.info("bot media imported", extra={**log, "media_key": media["key"]})
    return "imported"
