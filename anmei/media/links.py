"""Signed playback links: `GET /media/<token>`, expiring, tamper-proof and bound to one tenant.

The token is `<tenant id>.<django.core.signing token>`; the signature's salt names the tenant, so a
token moved to another tenant's prefix no longer verifies, and the view also checks that the key
lies under that tenant. No Authorization header is needed, so an `<audio src>` can play it.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

from anmei.common.errors import ApplicationError

_SALT = "anmei.media.t{tenant_id}"


def media_token(*, tenant_id: int, key: str, mime: str, ttl_seconds: int | None = None) -> str:
    ttl = settings.MEDIA_URL_TTL_SECONDS if ttl_seconds is None else ttl_seconds
    payload = {"k": key, "m": mime, "e": int(time.time()) + ttl}
    return f"{tenant_id}.{signing.dumps(payload, salt=_SALT.format(tenant_id=tenant_id), compress=False)}"


def media_url(*, tenant_id: int, key: str, mime: str, ttl_seconds: int | None = None) -> str:
    """A fresh relative playback URL for a stored object (sign on every read; never store it)."""
    return reverse(
        "media-play", kwargs={"token": media_token(tenant_id=tenant_id, key=key, mime=mime, ttl_seconds=ttl_seconds)}
    )


def media_url_for_payload(tenant_id: int, payload: dict[str, Any] | None) -> str | None:
    """The playback URL of a message payload's stored media, or None for messages without one.

    Voice a browser cannot play (AMR, SILK) links to its browser-playable rendition once one has
    been made (`media.play`, see anmei.asr.services); the original stays stored as it came.
    """
    media = (payload or {}).get("media")
    if not isinstance(media, dict) or not media.get("key"):
        return None
    play = media.get("play")
    if isinstance(play, dict) and play.get("key") and play.get("mime"):
        return media_url(tenant_id=tenant_id, key=play["key"], mime=play["mime"])
    return media_url(tenant_id=tenant_id, key=media["key"], mime=media.get("mime") or "application/octet-stream")


def media_token_verify(token: str) -> tuple[int, str, str]:
    """Return (tenant id, key, mime) of a valid link; raise a 403 ApplicationError otherwise."""
    tenant_part, _, signed = token.partition(".")
    if not tenant_part.isdigit() or not signed:
        raise ApplicationError("media_link_invalid", "the media link is not valid", status_code=403)
    tenant_id = int(tenant_part)
    try:
        payload = signing.loads(signed, salt=_SALT.format(tenant_id=tenant_id))
    except signing.BadSignature as exc:
        raise ApplicationError("media_link_invalid", "the media link is not valid", status_code=403) from exc
    if not isinstance(payload, dict) or not {"k", "m", "e"} <= set(payload):
        raise ApplicationError("media_link_invalid", "the media link is not valid", status_code=403)
    if int(payload["e"]) < time.time():
        raise ApplicationError("media_link_expired", "the media link has expired", status_code=403)
    if not str(payload["k"]).startswith(f"t{tenant_id}/"):
        raise ApplicationError("media_forbidden", "this media belongs to another tenant", status_code=403)
    return tenant_id, str(payload["k"]), str(payload["m"])
