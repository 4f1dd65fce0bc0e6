"""Media: one store for every upload — tenant keys, sniffed types, limits, encryption at rest —
played back only through signed, expiring, tenant-bound links with Range support."""

from __future__ import annotations

import socket

import pytest
from django.core import signing

from anmei.asr.models import AsrTask
from anmei.common.crypto import CHUNKED_HEADER_SIZE
from anmei.conversations.models import Message
from anmei.media.links import media_token, media_url
from anmei.media.services import media_read, media_store
from tests.fixtures_asr import voice_post
from tests.fixtures_bots import make_bot
from tests.helpers import assert_error

pytestmark = pytest.mark.usefixtures("fast_hashing")

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8ffff3f0005fe02fea73581e40000000049454e44ae426082"
)


@pytest.fixture
def bot_a(tenant_a):
    return make_bot(tenant_a, callback_url="http://127.0.0.1:9/alpha")


def _stored_files(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_voice_upload_is_stored_encrypted_under_the_tenant_key(tenant_a, bot_a, media_dir, speech_wav):
    # when a bot sends a voice message with a misleading file name
    response = voice_post(bot_a[1], speech_wav, name="../../etc/passwd.mp3")

    # then it is accepted with one transcription task, stored once under t<tenant>/voice/ with a random name
    assert response.status_code == 202, response.content
    body = response.json()
    task = AsrTask.objects.get()
    assert body["asr_task_id"] == task.asr_task_id and task.asr_task_id.startswith("asr_")
    media = Message.objects.get(pk=body["message_id"]).payload["media"]
    assert (media["kind"], media["mime"], media["ext"], media["size"]) == (
        "voice",
        "audio/x-wav",
        "wav",
        len(speech_wav),
    )
    files = _stored_files(media_dir)
    assert [f.relative_to(media_dir).as_posix() for f in files] == [media["key"]]
    assert media["key"].startswith(f"t{tenant_a.id}/voice/") and "passwd" not in media["key"]
    # and the bytes at rest are not the audio, but read back through the service they are
    at_rest = files[0].read_bytes()
    assert b"RIFF" not in at_rest and speech_wav[100:200] not in at_rest
    assert media_read(tenant_id=tenant_a.id, key=media["key"]) == speech_wav


def test_repeated_voice_message_keeps_one_file_and_one_task(bot_a, media_dir, speech_wav):
    first = voice_post(bot_a[1], speech_wav, "v-9").json()
    again = voice_post(bot_a[1], speech_wav, "v-9")

    assert again.status_code == 202
    assert again.json()["asr_task_id"] == first["asr_task_id"] and again.json()["duplicate"] is True
    assert AsrTask.objects.count() == 1 and len(_stored_files(media_dir)) == 1


def test_too_large_upload_is_413_and_nothing_is_stored(bot_a, media_dir, settings, speech_wav):
    settings.MEDIA_MAX_BYTES = {**settings.MEDIA_MAX_BYTES, "voice": 1000}

    error = assert_error(voice_post(bot_a[1], speech_wav), 413, "media_too_large")

    assert error["details"]["limit_bytes"] == 1000
    assert Message.objects.count() == 0 and AsrTask.objects.count() == 0 and _stored_files(media_dir) == []


@pytest.mark.parametrize(
    ("content", "kind", "detected"),
    [(b"plain text pretending to be audio\n" * 4, "voice", None), (PNG, "voice", "image/png")],
)
def test_content_that_is_not_the_declared_kind_is_415_and_nothing_stored(bot_a, media_dir, content, kind, detected):
    error = assert_error(voice_post(bot_a[1], content, name="voice.ogg", kind=kind), 415, "media_type_not_allowed")

    assert error["details"]["detected"] == detected
    assert Message.objects.count() == 0 and _stored_files(media_dir) == []


def test_image_upload_uses_the_same_store_and_gets_no_transcription(tenant_a, bot_a, media_dir):
    response = voice_post(bot_a[1], PNG, "img-1", name="photo.exe", kind="image")

    assert response.status_code == 202 and "asr_task_id" not in response.json()
    media = Message.objects.get().payload["media"]
    assert (media["mime"], media["key"].startswith(f"t{tenant_a.id}/image/")) == ("image/png", True)
    assert AsrTask.objects.count() == 0


def test_signed_link_plays_the_audio_with_its_type_and_serves_ranges(client, tenant_a, media_dir, speech_wav):
    stored = media_store(tenant_id=tenant_a.id, kind="voice", upload=speech_wav)
    url = media_url(tenant_id=tenant_a.id, key=stored.key, mime=stored.mime)

    full = client.get(url)
    assert (full.status_code, full["Content-Type"], full["Accept-Ranges"]) == (200, "audio/x-wav", "bytes")
    assert full.getvalue() == speech_wav and full["Content-Length"] == str(len(speech_wav))

    part = client.get(url, HTTP_RANGE="bytes=100-199")
    assert (part.status_code, part["Content-Range"], part.getvalue()) == (
        206,
        f"bytes 100-199/{len(speech_wav)}",
        speech_wav[100:200],
    )
    tail = client.get(url, HTTP_RANGE="bytes=-10")
    assert (tail.status_code, tail.getvalue()) == (206, speech_wav[-10:])
    open_ended = client.get(url, HTTP_RANGE=f"bytes={len(speech_wav) - 5}-")
    assert open_ended.getvalue() == speech_wav[-5:]

    beyond = client.get(url, HTTP_RANGE=f"bytes={len(speech_wav)}-")
    assert_error(beyond, 416, "range_not_satisfiable")
    assert beyond["Content-Range"] == f"bytes */{len(speech_wav)}"


def test_expired_tampered_and_other_tenant_links_are_403(client, tenant_a, tenant_b, media_dir, speech_wav):
    stored = media_store(tenant_id=tenant_a.id, kind="voice", upload=speech_wav)
    good = media_token(tenant_id=tenant_a.id, key=stored.key, mime=stored.mime)

    expired = media_token(tenant_id=tenant_a.id, key=stored.key, mime=stored.mime, ttl_seconds=-1)
    assert_error(client.get(f"/media/{expired}"), 403, "media_link_expired")

    tampered = good[:-3] + ("AAA" if good[-3:] != "AAA" else "BBB")
    assert_error(client.get(f"/media/{tampered}"), 403, "media_link_invalid")

    moved = f"{tenant_b.id}.{good.split('.', 1)[1]}"  # tenant A's link presented as tenant B's
    assert_error(client.get(f"/media/{moved}"), 403, "media_link_invalid")

    # a validly signed link for tenant B that names tenant A's object (a bug elsewhere) still fails
    forged = f"{tenant_b.id}." + signing.dumps(
        {"k": stored.key, "m": "audio/x-wav", "e": 2**40}, salt=f"anmei.media.t{tenant_b.id}", compress=False
    )
    assert_error(client.get(f"/media/{forged}"), 403, "media_forbidden")
    assert_error(client.get("/media/not-a-token"), 403, "media_link_invalid")
    assert client.get(f"/media/{good}").status_code == 200


def test_message_list_and_search_carry_a_fresh_media_url(as_user, carol, bot_a, media_dir, speech_wav):
    body = voice_post(bot_a[1], speech_wav).json()
    client = as_user(carol)

    listed = client.get(f"/api/v1/conversations/{body['conversation_id']}/messages").json()["results"]
    voice = next(m for m in listed if m["id"] == body["message_id"])
    found = client.get("/api/v1/conversations/messages/search?type=voice").json()["results"]

    assert voice["media_url"].startswith("/media/") and found[0]["media_url"].startswith("/media/")
    assert client.get(voice["media_url"]).getvalue() == speech_wav
    assert client.get(found[0]["media_url"]).getvalue() == speech_wav


@pytest.fixture
def moto_s3(settings):
    """A real S3 API (moto in server mode) on 127.0.0.1 and a bucket, used as the media storage."""
    import boto3
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    s3 = boto3.client("s3", endpoint_url=endpoint, **credentials)
    s3.create_bucket(Bucket="anmei-media")
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "anmei-media",
                "endpoint_url": endpoint,
                "access_key": "test",
                "secret_key": "test",
                "region_name": "us-east-1",
                "addressing_style": "path",
                "default_acl": None,
                "file_overwrite": False,
            },
        },
    }
    yield s3
    server.stop()


def test_s3_storage_keeps_encrypted_objects_under_tenant_keys(client, tenant_a, bot_a, moto_s3, speech_wav, settings):
    body = voice_post(bot_a[1], speech_wav).json()
    media = Message.objects.get(pk=body["message_id"]).payload["media"]

    keys = [o["Key"] for o in moto_s3.list_objects_v2(Bucket="anmei-media")["Contents"]]
    assert keys == [media["key"]] and keys[0].startswith(f"t{tenant_a.id}/voice/")
    at_rest = moto_s3.get_object(Bucket="anmei-media", Key=keys[0])["Body"].read()
    chunks = -(-len(speech_wav) // settings.MEDIA_CHUNK_BYTES)  # a header, then each chunk with its tag
    assert b"RIFF" not in at_rest and len(at_rest) == CHUNKED_HEADER_SIZE + len(speech_wav) + 16 * chunks
    url = media_url(tenant_id=tenant_a.id, key=media["key"], mime=media["mime"])
    assert client.get(url, HTTP_RANGE="bytes=0-3").getvalue() == b"RIFF"
