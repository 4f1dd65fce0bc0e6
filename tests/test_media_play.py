"""Playable voice: WeChat/QQ voice (SILK, AMR) gets one Ogg/Opus rendition through the media service,
made from the transcription's decode, and every playback link signs it; the original stays stored."""

from __future__ import annotations

import pytest

from anmei.asr.models import AsrTask
from anmei.asr.services import asr_task_retry
from anmei.conversations.models import Message
from anmei.jobs.models import Job
from anmei.media.links import media_token
from anmei.media.services import media_read
from tests.fixtures_asr import voice_post
from tests.fixtures_bots import make_bot
from tests.helpers import assert_error, poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


@pytest.fixture
def bot_a(tenant_a):
    return make_bot(tenant_a, callback_url="http://127.0.0.1:9/alpha")


def _finished(asr_task_id: str) -> AsrTask:
    """The task once its outcome is written and its job has let go (so a retry is accepted)."""
    assert poll(lambda: AsrTask.objects.get(asr_task_id=asr_task_id).status in ("success", "failed"), timeout=30)
    task = AsrTask.objects.get(asr_task_id=asr_task_id)
    assert poll(lambda: Job.objects.get(pk=task.job_id).state in ("done", "failed"), timeout=30)
    return task


def _renditions(root) -> list:
    return sorted(p for p in root.rglob("*.play.ogg") if p.is_file())


def test_silk_voice_plays_as_ogg_opus_through_a_tenant_bound_link_and_keeps_the_original(
    celery_worker, asr_api, as_user, carol, bob, bot_a, media_dir, speech_silk, speech_wav
):
    # given a WeChat customer's SILK voice message, transcribed on the asr worker
    body = voice_post(bot_a[1], speech_silk, "silk-play", name="voice.silk").json()
    task = _finished(body["asr_task_id"])
    assert task.status == "success"

    # when the consultant lists the conversation and searches voice messages
    client = as_user(carol)
    listed = client.get(f"/api/v1/conversations/{body['conversation_id']}/messages").json()["results"]
    url = next(m for m in listed if m["id"] == body["message_id"])["media_url"]
    found = client.get("/api/v1/conversations/messages/search?type=voice").json()["results"]
    audio_url = client.get(f"/api/v1/asr/tasks/{task.asr_task_id}").json()["audio_url"]

    # then every link plays the Ogg/Opus rendition, with seeking
    full = client.get(url)
    audio = full.getvalue()  # a streamed body: read once
    assert (full.status_code, full["Content-Type"], audio[:4]) == (200, "audio/ogg", b"OggS")
    assert client.get(found[0]["media_url"]).getvalue() == audio
    assert client.get(audio_url).getvalue() == audio
    size = len(audio)
    part = client.get(url, HTTP_RANGE="bytes=0-3")
    assert (part.status_code, part["Content-Range"], part.getvalue()) == (206, f"bytes 0-3/{size}", b"OggS")
    assert client.get(url, HTTP_RANGE="bytes=-10").getvalue() == audio[-10:]

    # and it is the same speech (decodes to about the same 4.4 s), stored encrypted under the tenant key
    from anmei.asr.audio import decode_to_16k_mono

    samples = decode_to_16k_mono(audio, ext="ogg")
    assert abs(len(samples) / 16000 - len(decode_to_16k_mono(speech_wav, ext="wav")) / 16000) < 0.1
    message = Message.objects.get(pk=body["message_id"])
    media = message.payload["media"]
    [rendition] = _renditions(media_dir)
    assert media["play"]["key"] == f"{media['key']}.play.ogg" and media["play"]["mime"] == "audio/ogg"
    assert rendition.relative_to(media_dir).as_posix() == media["play"]["key"]
    assert media["play"]["key"].startswith(f"t{carol.tenant_id}/voice/")
    assert b"OggS" not in rendition.read_bytes()[:64]

    # and the original SILK stays stored as the platform sent it
    assert (media["ext"], media["mime"]) == ("silk", "audio/silk")
    assert media_read(tenant_id=carol.tenant_id, key=media["key"]) == speech_silk

    # and a second tenant's link to it is refused
    token = url.removeprefix("/media/").rstrip("/")
    moved = f"{bob.tenant_id}.{token.split('.', 1)[1]}"
    assert_error(client.get(f"/media/{moved}"), 403, "media_link_invalid")
    forged = media_token(tenant_id=bob.tenant_id, key=media["play"]["key"], mime="audio/ogg")
    assert_error(client.get(f"/media/{forged}"), 403, "media_forbidden")


def test_a_task_run_again_never_makes_a_second_rendition(celery_worker, asr_api, bot_a, media_dir, speech_silk):
    # given a SILK voice message transcribed with its rendition
    body = voice_post(bot_a[1], speech_silk, "silk-again").json()
    task = _finished(body["asr_task_id"])
    first = Message.objects.get(pk=body["message_id"]).payload["media"]["play"]
    [stored] = _renditions(media_dir)
    blob = stored.read_bytes()

    # when the task runs again (forced retry: a second full attempt with a second decode)
    asr_task_retry(task=task, force=True)
    assert poll(lambda: len(asr_api.requests) == 2)
    assert _finished(task.asr_task_id).status == "success"

    # then the first rendition is kept as it was, and no second one appears
    assert Message.objects.get(pk=body["message_id"]).payload["media"]["play"] == first
    assert _renditions(media_dir) == [stored] and stored.read_bytes() == blob

    # when an attempt died after storing the rendition but before recording it, and the task runs again
    message = Message.objects.get(pk=body["message_id"])
    media = {k: v for k, v in message.payload["media"].items() if k != "play"}
    Message.objects.filter(pk=message.pk).update(payload={**message.payload, "media": media})
    asr_task_retry(task=AsrTask.objects.get(pk=task.pk), force=True)
    assert poll(lambda: len(asr_api.requests) == 3)
    assert _finished(task.asr_task_id).status == "success"

    # then the leftover is replaced, still one rendition, recorded again
    assert poll(lambda: "play" in Message.objects.get(pk=message.pk).payload["media"])
    assert _renditions(media_dir) == [stored] and stored.read_bytes() != blob


def _amr_clip(seconds: int = 3) -> bytes:
    """A valid AMR-NB file without an encoder (Debian's ffmpeg has none): random 12.2 kbit/s frames
    (header 0x3c, 31 bytes each, 20 ms) decode to noise of the given length."""
    import random

    rng = random.Random(7)
    return b"#!AMR\n" + b"".join(b"\x3c" + rng.randbytes(31) for _ in range(seconds * 50))


def test_amr_voice_plays_as_ogg_opus_too(celery_worker, asr_api, as_user, carol, bot_a, media_dir):
    # given a QQ customer's AMR voice message, transcribed on the asr worker
    clip = _amr_clip()
    body = voice_post(bot_a[1], clip, "amr-play", name="voice.amr").json()
    assert _finished(body["asr_task_id"]).status == "success"

    # when the consultant plays it from the message list
    listed = as_user(carol).get(f"/api/v1/conversations/{body['conversation_id']}/messages").json()["results"]
    played = as_user(carol).get(next(m for m in listed if m["id"] == body["message_id"])["media_url"])

    # then it is Ogg/Opus of the same length, and the AMR original stays stored
    from anmei.asr.audio import decode_to_16k_mono

    audio = played.getvalue()  # a streamed body: read once
    assert (played.status_code, played["Content-Type"], audio[:4]) == (200, "audio/ogg", b"OggS")
    assert abs(len(decode_to_16k_mono(audio, ext="ogg")) / 16000 - 3.0) < 0.1
    media = Message.objects.get(pk=body["message_id"]).payload["media"]
    assert media["ext"] == "amr" and media_read(tenant_id=carol.tenant_id, key=media["key"]) == clip
    assert len(_renditions(media_dir)) == 1


def test_wav_voice_needs_no_rendition(celery_worker, asr_api, as_user, carol, bot_a, media_dir, speech_wav):
    body = voice_post(bot_a[1], speech_wav, "wav-play").json()
    assert _finished(body["asr_task_id"]).status == "success"

    listed = as_user(carol).get(f"/api/v1/conversations/{body['conversation_id']}/messages").json()["results"]
    url = next(m for m in listed if m["id"] == body["message_id"])["media_url"]

    assert "play" not in Message.objects.get(pk=body["message_id"]).payload["media"]
    assert _renditions(media_dir) == []
    assert as_user(carol).get(url)["Content-Type"] == "audio/x-wav"


def test_a_rendition_that_cannot_be_stored_does_not_fail_the_transcription(
    asr_api, as_user, carol, bot_a, media_dir, speech_silk, celery_app, caplog
):
    import logging

    from celery.contrib.testing.worker import start_worker

    # given a SILK voice message whose rendition's place in the storage is taken by a non-empty folder
    celery_app.control.purge()
    body = voice_post(bot_a[1], speech_silk, "silk-blocked").json()
    key = Message.objects.get(pk=body["message_id"]).payload["media"]["key"]
    (media_dir / f"{key}.play.ogg" / "x").mkdir(parents=True)

    # when the asr worker transcribes it
    caplog.handler.setLevel(logging.WARNING)
    logging.getLogger("anmei.asr").addHandler(caplog.handler)  # anmei loggers do not propagate
    try:
        with start_worker(
            celery_app, pool="threads", concurrency=1, perform_ping_check=False, queues=["asr"], loglevel="WARNING"
        ) as worker:
            task = _finished(body["asr_task_id"])
            worker.pool.executor.shutdown(wait=True)
    finally:
        logging.getLogger("anmei.asr").removeHandler(caplog.handler)

    # then the rendition failed, the transcription succeeded and the link still plays the original SILK
    failed = {r.asr_task_id for r in caplog.records if r.getMessage() == "asr playable rendition failed"}
    assert failed == {body["asr_task_id"]}  # (a record may be caught twice where another test let it propagate)
    assert (task.status, task.text, task.attempts) == ("success", asr_api.text, 1)
    assert "play" not in Message.objects.get(pk=body["message_id"]).payload["media"]
    listed = as_user(carol).get(f"/api/v1/conversations/{body['conversation_id']}/messages").json()["results"]
    url = next(m for m in listed if m["id"] == body["message_id"])["media_url"]
    played = as_user(carol).get(url)
    assert (played["Content-Type"], played.getvalue()) == ("audio/silk", speech_silk)


async def test_the_asr_result_event_links_the_playable_rendition(
    celery_worker, asr_api, carol, bot_a, media_dir, speech_silk, as_user, async_db_closed
):
    from asgiref.sync import sync_to_async

    from tests.fixtures_automation import receive_type, ws_connect

    # given consultant Carol on the console
    console = await ws_connect("/ws/console/", carol)

    # when a SILK voice message is transcribed
    body = (await sync_to_async(voice_post)(bot_a[1], speech_silk, "silk-ws")).json()
    result = await receive_type(console, "asr.result", timeout=30)
    await console.disconnect()

    # then the pushed link plays the Ogg/Opus rendition
    assert (result["asr_task_id"], result["status"]) == (body["asr_task_id"], "success")
    played = await sync_to_async(lambda: as_user(carol).get(result["audio_url"]))()
    assert (played.status_code, played["Content-Type"], played.getvalue()[:4]) == (200, "audio/ogg", b"OggS")
