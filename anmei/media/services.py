"""The one place uploads are stored and read back: tenant keys, sniffed types, limits, encryption.

Every stored object lives under `t<tenant>/<kind>/<yyyy>/<mm>/<dd>/<random>.<ext>` in the storage
named `media` (STORAGES; MEDIA_STORAGE picks local disk or an S3-compatible bucket). The client's
file name and content type are never trusted: the type comes from the bytes, the name is random.
The stored bytes are AES-GCM ciphertext bound to the key, in independently encrypted chunks
(anmei.common.crypto.encrypt_bytes_chunked) so playback decrypts only what a Range asks for;
objects stored whole (encrypt_bytes, before chunking) are still read.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import IO, Any

import filetype
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.utils import timezone

from anmei.common.crypto import (
    CHUNKED_HEADER_SIZE,
    ChunkedBlob,
    decrypt_bytes,
    encrypt_bytes_chunked,
    is_chunked_blob,
)
from anmei.common.errors import ApplicationError

logger = logging.getLogger("anmei.media")

# Magic numbers `filetype` does not know: WeChat/QQ voice (SILK v3, WeChat prefixes one 0x02 byte).
_SILK_MAGICS = (b"#!SILK_V3", b"\x02#!SILK_V3")


@dataclass(frozen=True)
class StoredMedia:
    """What a message payload records about a stored upload (no client-usable path)."""

    key: str
    kind: str
    mime: str
    ext: str
    size: int
    sha256: str

    def as_payload(self) -> dict[str, Any]:
        return asdict(self)


def media_storage() -> Storage:
    return storages["media"]


def media_sniff(head: bytes) -> tuple[str, str] | None:
    """Return (extension, mime type) judged from the first bytes, or None when unknown."""
    if head.startswith(_SILK_MAGICS):
        return "silk", "audio/silk"
    kind = filetype.guess(head)
    if kind is None:
        return None
    return kind.extension, kind.mime


def _read_limited(upload: IO[bytes] | bytes, limit: int) -> bytes:
    if isinstance(upload, bytes | bytearray):
        return bytes(upload)
    chunks, size = [], 0
    for chunk in upload.chunks() if hasattr(upload, "chunks") else iter(lambda: upload.read(65536), b""):
        size += len(chunk)
        if size > limit:
            break
        chunks.append(chunk)
    return b"".join(chunks) if size <= limit else b"\0" * (limit + 1)


def media_store(*, tenant_id: int, kind: str, upload: IO[bytes] | bytes) -> StoredMedia:
    """Check an upload's size and real type for its `kind`, encrypt it and store it under the tenant.

    Raises ApplicationError (413 `media_too_large`, 415 `media_type_not_allowed`) before anything is
    written. Call outside database transactions: the storage may be a remote bucket.
    """
    limits: dict[str, int] = settings.MEDIA_MAX_BYTES
    allowed: dict[str, list[str]] = settings.MEDIA_ALLOWED_TYPES
    if kind not in limits or kind not in allowed:
        raise ApplicationError("media_kind_unknown", f"uploads of kind '{kind}' are not accepted")
    limit = limits[kind]
    declared = getattr(upload, "size", None)
    if declared is not None and declared > limit:
        raise ApplicationError(
            "media_too_large",
            f"a {kind} upload may be at most {limit} bytes",
            status_code=413,
            details={"limit_bytes": limit, "size": declared},
        )
    data = _read_limited(upload, limit)
    if len(data) > limit:
        raise ApplicationError(
            "media_too_large",
            f"a {kind} upload may be at most {limit} bytes",
            status_code=413,
            details={"limit_bytes": limit},
        )
    sniffed = media_sniff(data[:8192])
    if sniffed is None or sniffed[0] not in allowed[kind]:
        raise ApplicationError(
            "media_type_not_allowed",
            f"the file's content is not an accepted {kind} format",
            status_code=415,
            details={"detected": sniffed[1] if sniffed else None, "allowed": allowed[kind]},
        )
    ext, mime = sniffed
    key = f"t{tenant_id}/{kind}/{timezone.now():%Y/%m/%d}/{uuid.uuid4().hex}.{ext}"
    started = time.perf_counter()
    try:
        saved = media_storage().save(key, ContentFile(_encrypt(data, key)))
    except Exception as exc:  # noqa: BLE001 - disk full, bucket unreachable: the dependency is down
        logger.exception("media store failed", extra={"tenant_id": tenant_id, "media_kind": kind})
        raise ApplicationError("media_unavailable", "media storage is unreachable", status_code=503) from exc
    if saved != key:  # a storage that renames on collision would break the key binding: refuse
        media_storage().delete(saved)
        raise ApplicationError("media_store_failed", "storage renamed the object", status_code=503)
    stored = StoredMedia(
        key=key, kind=kind, mime=mime, ext=ext, size=len(data), sha256=hashlib.sha256(data).hexdigest()
    )
    logger.info(
        "media stored",
        extra={
            "tenant_id": tenant_id,
            "media_kind": kind,
            "mime": mime,
            "size": len(data),
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return stored


def _encrypt(data: bytes, key: str) -> bytes:
    return encrypt_bytes_chunked(data, context=key, chunk_size=settings.MEDIA_CHUNK_BYTES)


def _check_tenant(tenant_id: int, key: str) -> None:
    if not key.startswith(f"t{tenant_id}/"):
        raise ApplicationError("media_forbidden", "this media belongs to another tenant", status_code=403)


def media_store_rendition(*, tenant_id: int, key: str, suffix: str, data: bytes) -> str:
    """Store a derived copy of a stored object beside it as `<key>.<suffix>` and return that key.

    Same tenant prefix, same encryption (bound to the new key). The key is fixed by the original,
    so a repeated attempt replaces a leftover of an earlier one instead of adding a second copy.
    Call outside database transactions: the storage may be a remote bucket.
    """
    _check_tenant(tenant_id, key)
    target = f"{key}.{suffix}"
    storage = media_storage()
    try:
        if storage.exists(target):  # an earlier attempt stored it but died before recording it
            storage.delete(target)
        saved = storage.save(target, ContentFile(_encrypt(data, target)))
    except Exception as exc:  # noqa: BLE001 - disk full, bucket unreachable: the dependency is down
        logger.exception("media rendition store failed", extra={"tenant_id": tenant_id})
        raise ApplicationError("media_unavailable", "media storage is unreachable", status_code=503) from exc
    if saved != target:
        media_storage().delete(saved)
        raise ApplicationError("media_store_failed", "storage renamed the object", status_code=503)
    logger.info("media rendition stored", extra={"tenant_id": tenant_id, "suffix": suffix, "size": len(data)})
    return target


def media_read(*, tenant_id: int, key: str) -> bytes:
    """Return the plain bytes of a stored object of this tenant (decrypted, integrity-checked)."""
    with media_open(tenant_id=tenant_id, key=key) as media:
        try:
            return b"".join(media.chunks())
        except ValueError as exc:
            raise ApplicationError("media_corrupt", "the stored media cannot be decrypted", status_code=500) from exc
        except Exception as exc:  # noqa: BLE001 - disk or bucket unreachable halfway
            logger.exception("media read failed", extra={"tenant_id": tenant_id})
            raise ApplicationError("media_unavailable", "media storage is unreachable", status_code=503) from exc


class MediaReader:
    """An open stored object: `size` (plain bytes) and `chunks(start, end)`, read and decrypted lazily.

    A chunked object reads its header on open and then only the chunks a range covers (one ranged
    read each: a seek on disk, a ranged GET on a bucket). An object stored whole is read and
    decrypted at once. Use as a context manager, or call close().
    """

    def __init__(self, storage: Storage, key: str) -> None:
        self._key = key
        self._storage = storage
        self._file = None
        self._whole: bytes | None = None
        self._blob: ChunkedBlob | None = None
        head = self._read(0, CHUNKED_HEADER_SIZE)
        if is_chunked_blob(head):
            self._blob = ChunkedBlob(head, context=key, read=self._read)
            self.size = self._blob.size
        else:  # stored whole, before chunking: the only way is the whole object
            self._whole = decrypt_bytes(head + self._read(len(head), None), context=key)
            self.size = len(self._whole)

    def _read(self, offset: int, length: int | None) -> bytes:
        bucket = getattr(self._storage, "bucket", None)
        if bucket is not None:  # S3: a ranged GET, never the whole object (S3File downloads it all)
            from storages.utils import clean_name  # django-storages: only where the bucket is configured

            last = "" if length is None else str(offset + length - 1)
            name = self._storage._normalize_name(clean_name(self._key))
            return bucket.Object(name).get(Range=f"bytes={offset}-{last}")["Body"].read()
        if self._file is None:
            self._file = self._storage.open(self._key, "rb")
        self._file.seek(offset)
        return self._file.read() if length is None else self._file.read(length)

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        end = self.size - 1 if end is None else min(end, self.size - 1)
        if self._whole is not None:
            if start <= end:
                yield self._whole[start : end + 1]
            return
        assert self._blob is not None
        yield from self._blob.chunks(start, end)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> MediaReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def media_open(*, tenant_id: int, key: str) -> MediaReader:
    """Open a stored object of this tenant for reading ranges of its plain bytes (MediaReader).

    Raises ApplicationError: 403 another tenant's key, 404 gone, 503 storage unreachable, 500 the
    object does not decrypt. A chunk that fails later raises ValueError from `chunks()`.
    """
    _check_tenant(tenant_id, key)
    try:
        return MediaReader(media_storage(), key)
    except ValueError as exc:
        raise ApplicationError("media_corrupt", "the stored media cannot be decrypted", status_code=500) from exc
    except ApplicationError:
        raise
    except Exception as exc:  # noqa: BLE001 - disk or bucket unreachable, or the object is gone
        if _is_missing(exc):
            raise ApplicationError("media_not_found", "the media is gone", status_code=404) from exc
        logger.exception("media read failed", extra={"tenant_id": tenant_id})
        raise ApplicationError("media_unavailable", "media storage is unreachable", status_code=503) from exc


def _is_missing(exc: Exception) -> bool:
    if isinstance(exc, FileNotFoundError):
        return True
    code = getattr(exc, "response", {}).get("Error", {}).get("Code") if hasattr(exc, "response") else None
    return code in ("NoSuchKey", "404", "NotFound")


def media_delete(*, tenant_id: int, key: str) -> None:
    """Remove a stored object (a duplicate upload that lost its race); missing is fine."""
    _check_tenant(tenant_id, key)
    try:
        media_storage().delete(key)
    except Exception:  # noqa: BLE001 - an orphan blob is harmless; the message is the record
        logger.warning("media delete failed", extra={"tenant_id": tenant_id})
