"""Playback reads and decrypts only the chunks a Range covers, and streams them; objects stored
whole (before chunked encryption) still play."""

from __future__ import annotations

import os
import struct

import pytest
from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage
from django.test import Client

from anmei.common.crypto import encrypt_bytes
from anmei.media.links import media_url
from anmei.media.services import media_read, media_storage, media_store

pytestmark = pytest.mark.django_db


class _CountingFile(File):
    def read(self, size=-1):
        data = super().read(size)
        CountingStorage.bytes_read += len(data)
        return data


class CountingStorage(FileSystemStorage):
    """Local storage that counts the bytes read back through it (what a Range request costs)."""

    bytes_read = 0

    def _open(self, name, mode="rb"):
        return _CountingFile(open(self.path(name), mode))  # noqa: SIM115 - the File wrapper closes it


@pytest.fixture
def counting_storage(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "media": {"BACKEND": f"{__name__}.CountingStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    settings.MEDIA_CHUNK_BYTES = 64 * 1024
    CountingStorage.bytes_read = 0
    return CountingStorage


def _wav(payload: bytes) -> bytes:
    fmt = struct.pack("<4sIHHIIHH", b"fmt ", 16, 1, 1, 16000, 32000, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", 4 + len(fmt) + 8 + len(payload))
        + b"WAVE"
        + fmt
        + b"data"
        + struct.pack("<I", len(payload))
        + payload
    )


def test_a_range_for_the_last_bytes_of_a_large_object_reads_only_its_chunks(alice, counting_storage, settings):
    # given an 8 MB voice upload, stored encrypted
    data = _wav(os.urandom(8 * 1024 * 1024 - 44))
    stored = media_store(tenant_id=alice.tenant_id, kind="voice", upload=data)
    url = media_url(tenant_id=alice.tenant_id, key=stored.key, mime=stored.mime)
    counting_storage.bytes_read = 0

    # when a player seeks to the last 1000 bytes
    response = Client().get(url, HTTP_RANGE="bytes=-1000")

    # then it gets exactly them
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {len(data) - 1000}-{len(data) - 1}/{len(data)}"
    assert response["Content-Length"] == "1000"
    assert response.getvalue() == data[-1000:]
    # and read from storage the header and at most the two chunks the range can span, not 8 MB
    assert counting_storage.bytes_read <= 64 + 2 * (settings.MEDIA_CHUNK_BYTES + 16)
    # and the body was streamed, not built whole
    assert response.streaming


def test_a_range_in_the_middle_spanning_chunks_is_exact(alice, counting_storage, settings):
    data = _wav(os.urandom(3 * settings.MEDIA_CHUNK_BYTES))
    stored = media_store(tenant_id=alice.tenant_id, kind="voice", upload=data)
    url = media_url(tenant_id=alice.tenant_id, key=stored.key, mime=stored.mime)
    start = settings.MEDIA_CHUNK_BYTES - 7
    end = 2 * settings.MEDIA_CHUNK_BYTES + 5
    response = Client().get(url, HTTP_RANGE=f"bytes={start}-{end}")
    assert (response.status_code, response.getvalue()) == (206, data[start : end + 1])
    assert Client().get(url).getvalue() == data
    assert media_read(tenant_id=alice.tenant_id, key=stored.key) == data


def test_an_object_stored_whole_before_chunking_still_plays(alice, counting_storage):
    # given an object in the earlier format: one AES-GCM blob bound to its key
    data = _wav(os.urandom(5000))
    key = f"t{alice.tenant_id}/voice/2026/01/01/{'a' * 32}.wav"
    media_storage().save(key, ContentFile(encrypt_bytes(data, context=key)))
    url = media_url(tenant_id=alice.tenant_id, key=key, mime="audio/x-wav")

    # then it plays whole and by range, and reads back
    assert Client().get(url).getvalue() == data
    part = Client().get(url, HTTP_RANGE="bytes=100-199")
    assert (part.status_code, part.getvalue()) == (206, data[100:200])
    assert media_read(tenant_id=alice.tenant_id, key=key) == data


def test_a_chunk_moved_under_another_key_does_not_decrypt(alice, counting_storage):
    data = _wav(os.urandom(1000))
    stored = media_store(tenant_id=alice.tenant_id, kind="voice", upload=data)
    blob = media_storage().open(stored.key).read()
    other = f"t{alice.tenant_id}/voice/2026/01/01/{'b' * 32}.wav"
    media_storage().save(other, ContentFile(blob))
    url = media_url(tenant_id=alice.tenant_id, key=other, mime="audio/x-wav")
    response = Client().get(url, HTTP_RANGE="bytes=0-3")
    assert (response.status_code, response.json()["error"]["code"]) == (500, "media_corrupt")
