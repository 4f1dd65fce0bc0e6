"""Round-one bot uploads (plain files under BOT_MEDIA_ROOT) brought into the media service:
encrypted, playable through signed links, voice transcribed once on the asr worker."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from anmei.accounts.models import User
from anmei.asr.models import AsrTask
from anmei.conversations.models import Conversation, Message
from anmei.media.services import media_read
from tests.helpers import poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


def _legacy_message(tenant, root, relative: str, data: bytes | None, *, kind: str = "voice") -> Message:
    """A message as the round-one webhook stored it: a plain file and `payload.file`."""
    if data is not None:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(data)
    customer, _ = User.objects.get_or_create(
        tenant=tenant, username=f"wecom:{tenant.slug}", defaults={"source": "wecom", "platform_user_id": tenant.slug}
    )
    conversation = Conversation.objects.create(tenant=tenant, customer=customer, channel="wecom")
    return Message.objects.create(
        tenant=tenant,
        conversation=conversation,
        sender_type="customer",
        type=kind,
        payload={"file": {"path": relative, "name": "a.silk", "size": len(data or b""), "content_type": ""}},
    )


def test_old_voice_uploads_are_stored_encrypted_transcribed_once_and_their_plain_files_removed(
    celery_worker, asr_api, media_dir, settings, tmp_path, tenant_a, tenant_b, speech_silk, capsys
):
    # given round-one uploads: a SILK voice message, one whose file is gone, one naming another
    # tenant's directory, and a "voice" that is not audio
    root = tmp_path / "legacy"
    settings.BOT_MEDIA_ROOT = root
    voice = _legacy_message(tenant_a, root, f"t{tenant_a.id}/2026/01/02/v.silk", speech_silk)
    gone = _legacy_message(tenant_a, root, f"t{tenant_a.id}/2026/01/02/gone.amr", None)
    (root / f"t{tenant_b.id}").mkdir(parents=True)
    (root / f"t{tenant_b.id}" / "x.silk").write_bytes(speech_silk)
    foreign = _legacy_message(tenant_a, root, f"t{tenant_a.id}/../t{tenant_b.id}/x.silk", None)
    junk = _legacy_message(tenant_a, root, f"t{tenant_a.id}/2026/01/02/junk.amr", b"not audio at all" * 10)

    # when the operator runs the import twice
    call_command("bot_media_import")
    first = capsys.readouterr().out.strip()
    call_command("bot_media_import")
    second = capsys.readouterr().out.strip()

    # then the voice is stored encrypted under its tenant, transcribed once, and its plain copy is gone
    assert first == "imported=1 transcribing=1 missing=1 refused=1 rejected=1"
    assert second == "imported=0 transcribing=0 missing=1 refused=1 rejected=1"
    voice.refresh_from_db()
    media = voice.payload["media"]
    assert media["key"].startswith(f"t{tenant_a.id}/voice/") and media["ext"] == "silk"
    assert media_read(tenant_id=tenant_a.id, key=media["key"]) == speech_silk
    assert speech_silk[:64] not in (media_dir / media["key"]).read_bytes()  # encrypted at rest
    assert not (root / f"t{tenant_a.id}/2026/01/02/v.silk").exists()
    task = AsrTask.objects.get(message=voice)
    assert task.asr_task_id == voice.payload["asr_task_id"]
    assert poll(lambda: AsrTask.objects.get(pk=task.pk).status == "success", timeout=30)
    voice.refresh_from_db()
    assert (voice.content, voice.payload["media"]["play"]["mime"]) == (asr_api.text, "audio/ogg")
    assert AsrTask.objects.count() == 1
    # and nothing else changed: the other tenant's file was never read, the rest kept their payloads
    assert (root / f"t{tenant_b.id}" / "x.silk").read_bytes() == speech_silk
    for message in (gone, foreign, junk):
        message.refresh_from_db()
        assert "media" not in message.payload and "asr_task_id" not in message.payload
