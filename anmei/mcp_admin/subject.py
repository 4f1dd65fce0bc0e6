"""Subject tokens: a short-lived, platform-signed claim "this MCP call acts for customer C of tenant T".

The AI gateway sends one in `X-Anmei-Subject` with every call it makes for a customer, so that an
LLM talked into asking for another customer's data is refused by the sidecar, not by the prompt.
Signed with Django's signing (SECRET_KEY + a dedicated salt); the expiry travels inside the signed
payload so every token can carry its own TTL.
"""

from __future__ import annotations

import time

from django.core import signing

SALT = "anmei.mcp.subject.v1"


class SubjectTokenError(Exception):
    """The subject token is unusable; `code` is `subject_invalid` or `subject_expired`."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(message)


def subject_token_issue(*, tenant_id: int, customer_id: int, ttl_seconds: int = 300) -> str:
    """Return a token binding tenant + customer that expires `ttl_seconds` from now."""
    exp = int(time.time()) + int(ttl_seconds)
    return signing.dumps({"t": int(tenant_id), "c": int(customer_id), "exp": exp}, salt=SALT, compress=False)


def subject_token_verify(token: str) -> dict:
    """Return `{"tenant_id", "customer_id", "expires_at"}` or raise SubjectTokenError.

    A bad signature and an expired token are told apart so the caller learns which one to fix.
    """
    try:
        payload = signing.loads(token, salt=SALT)
    except signing.BadSignature as exc:
        raise SubjectTokenError("subject_invalid", "subject token signature is invalid") from exc
    if not isinstance(payload, dict) or not {"t", "c", "exp"} <= payload.keys():
        raise SubjectTokenError("subject_invalid", "subject token payload is malformed")
    if int(payload["exp"]) <= int(time.time()):
        raise SubjectTokenError("subject_expired", "subject token has expired")
    return {"tenant_id": int(payload["t"]), "customer_id": int(payload["c"]), "expires_at": int(payload["exp"])}
