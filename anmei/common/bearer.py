from __future__ import annotations

from rest_framework import authentication, exceptions


def bearer_token(request) -> str | None:
    """Return the token of an `Authorization: Bearer <token>` header, None when there is none.

    A malformed header is an authentication failure (401), never a server error.
    """
    header = authentication.get_authorization_header(request).split()
    if not header or header[0].lower() != b"bearer":
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed("malformed Authorization header", code="invalid_token")
    try:
        return header[1].decode()
    except UnicodeError as exc:
        raise exceptions.AuthenticationFailed("malformed token", code="invalid_token") from exc
