"""Secrets: random tokens, hashes for look-up, constant-time comparison, Fernet encryption."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

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


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
