"""Secrets: random tokens, hashes for look-up, constant-time comparison, Fernet encryption."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
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


def hmac_sha256_hex(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
