"""Secrets: random tokens, hashes for look-up, constant-time comparison, Fernet encryption."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from collections.abc import Callable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings


def new_token(prefix: str, nbytes: int = 32) -> str:
    return f"{prefix}{secrets.token_urlsafe(nbytes)}"


def hash_token(token: str) -> str:
    """Return the SHA-256 hex digest used to store and look up a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _fernet() -> MultiFernet:
    """The current key first (it encrypts), then FIELD_ENCRYPTION_OLD_KEYS (they still decrypt).

    Without FIELD_ENCRYPTION_KEY (development only: settings refuse that when DEBUG is off) the
    key is derived from SECRET_KEY so that a checkout runs with no extra setting.
    """
    key = settings.FIELD_ENCRYPTION_KEY
    if not key:
        key = base64.urlsafe_b64encode(hashlib.sha256(("fernet:" + settings.SECRET_KEY).encode()).digest()).decode()
    return MultiFernet([Fernet(k) for k in [key, *settings.FIELD_ENCRYPTION_OLD_KEYS]])


def encrypt(plain: str) -> str:
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:  # key rotated or data tampered with
        raise ValueError("cannot decrypt secret") from exc


_BLOB_MAGIC = b"AM1"  # format marker: magic, 12-byte nonce, AES-256-GCM ciphertext + tag


def _blob_keys() -> list[bytes]:
    """256-bit keys for stored blobs, derived from the Fernet keys: the current one first (it encrypts),
    then FIELD_ENCRYPTION_OLD_KEYS (they still decrypt). SECRET_KEY stands in during development."""
    bases = [settings.FIELD_ENCRYPTION_KEY or ("fernet:" + settings.SECRET_KEY), *settings.FIELD_ENCRYPTION_OLD_KEYS]
    return [hashlib.sha256(b"anmei-blob:" + (b.encode() if isinstance(b, str) else b)).digest() for b in bases]


def encrypt_bytes(plain: bytes, *, context: str) -> bytes:
    """Encrypt a blob (media at rest) with AES-256-GCM; `context` (its storage key) is authenticated.

    Binding the ciphertext to its key means a blob copied under another tenant's key fails to decrypt.
    """
    nonce = secrets.token_bytes(12)
    return _BLOB_MAGIC + nonce + AESGCM(_blob_keys()[0]).encrypt(nonce, plain, context.encode())


def decrypt_bytes(blob: bytes, *, context: str) -> bytes:
    if not blob.startswith(_BLOB_MAGIC) or len(blob) < len(_BLOB_MAGIC) + 12 + 16:
        raise ValueError("not an encrypted blob")
    nonce, body = blob[3:15], blob[15:]
    for key in _blob_keys():
        try:
            return AESGCM(key).decrypt(nonce, body, context.encode())
        except InvalidTag:
            continue
    raise ValueError("cannot decrypt blob")  # key unknown, blob tampered with, or moved to another key


# The chunked blob format (media at rest since range playback): a header, then the plain bytes in
# fixed-size chunks, each AES-256-GCM on its own (ciphertext + 16-byte tag), so a Range request reads
# and decrypts only the chunks it covers. Header: magic, chunk size, plain size, 8-byte nonce prefix;
# chunk i's nonce is the prefix + i. Every chunk authenticates the storage key, the header and its
# index, so chunks cannot be swapped, moved to another object, or the object cut short.
_CHUNKED_MAGIC = b"AM2"
_CHUNKED_HEADER = struct.Struct(">3sIQ8s")
CHUNKED_HEADER_SIZE = _CHUNKED_HEADER.size
_TAG = 16


def encrypt_bytes_chunked(plain: bytes, *, context: str, chunk_size: int = 64 * 1024) -> bytes:
    """Encrypt a blob as independently decryptable chunks (see ChunkedBlob), bound to `context`."""
    header = _CHUNKED_HEADER.pack(_CHUNKED_MAGIC, chunk_size, len(plain), secrets.token_bytes(8))
    aead = AESGCM(_blob_keys()[0])
    parts = [header]
    for index, start in enumerate(range(0, len(plain), chunk_size)):
        nonce = header[-8:] + index.to_bytes(4, "big")
        parts.append(aead.encrypt(nonce, plain[start : start + chunk_size], _chunk_aad(context, header, index)))
    return b"".join(parts)


def _chunk_aad(context: str, header: bytes, index: int) -> bytes:
    return context.encode() + b"\0" + header + index.to_bytes(4, "big")


def is_chunked_blob(head: bytes) -> bool:
    return head.startswith(_CHUNKED_MAGIC)


class ChunkedBlob:
    """Read plain byte ranges of a chunked blob through `read(offset, length)` on the stored bytes.

    Only the chunks a range covers are read and decrypted; a chunk that fails to authenticate
    raises ValueError (wrong key, tampering, another object's chunk).
    """

    def __init__(self, header: bytes, *, context: str, read: Callable[[int, int], bytes]) -> None:
        if len(header) < CHUNKED_HEADER_SIZE or not is_chunked_blob(header):
            raise ValueError("not a chunked blob")
        self.header = header[:CHUNKED_HEADER_SIZE]
        _, self.chunk_size, self.size, self._prefix = _CHUNKED_HEADER.unpack(self.header)
        if self.chunk_size <= 0:
            raise ValueError("bad chunked blob header")
        self._context = context
        self._read = read
        self._key: bytes | None = None

    def _decrypt(self, index: int, data: bytes) -> bytes:
        nonce = self._prefix + index.to_bytes(4, "big")
        aad = _chunk_aad(self._context, self.header, index)
        for key in [self._key] if self._key else _blob_keys():
            try:
                plain = AESGCM(key).decrypt(nonce, data, aad)
            except InvalidTag:
                continue
            self._key = key
            return plain
        raise ValueError("cannot decrypt blob chunk")

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """Yield the plain bytes `start`..`end` (inclusive; default: to the end), chunk by chunk."""
        end = self.size - 1 if end is None else min(end, self.size - 1)
        if start > end:
            return
        stride = self.chunk_size + _TAG
        for index in range(start // self.chunk_size, end // self.chunk_size + 1):
            first = index * self.chunk_size
            length = min(self.chunk_size, self.size - first)
            data = self._read(CHUNKED_HEADER_SIZE + index * stride, length + _TAG)
            if len(data) != length + _TAG:
                raise ValueError("chunked blob cut short")
            plain = self._decrypt(index, data)
            yield plain[max(start - first, 0) : end - first + 1]


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
