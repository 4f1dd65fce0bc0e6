"""Pluggable carriers for stored notifications.

`stored` does nothing beyond the row: the console shows it on the next connection. `webhook`
POSTs it to a push gateway (APNs/FCM/WeCom bridge…) and fails loudly on a non-2xx so that the
calling task retries; the row's dedupe key and an `Idempotency-Key` header let the gateway drop a
repeat.
"""

from __future__ import annotations

import json
import time

from django.conf import settings

from anmei.common import outbound
from anmei.common.crypto import hmac_sha256_hex
from anmei.notifications.models import Notification


class NotificationBackendError(Exception):
    """The backend could not hand the notification over (retry later)."""


class StoredBackend:
    name = "stored"

    def send(self, notification: Notification) -> bool:
        """Keep the row for the next console connection; nothing is sent now."""
        return False


class WebhookBackend:
    name = "webhook"

    def __init__(self, url: str = "", secret: str = "") -> None:
        self.url = url
        self.secret = secret

    def send(self, notification: Notification) -> bool:
        if not self.url:
            raise NotificationBackendError("webhook backend has no push gateway URL")
        body = json.dumps(
            {
                "notification_id": notification.id,
                "tenant_id": notification.tenant_id,
                "user_id": notification.user_id,
                "kind": notification.kind,
                "title": notification.title,
                "body": notification.body,
                "data": notification.payload,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": notification.dedupe_key}
        if self.secret:
            timestamp = str(int(time.time()))
            headers["X-Anmei-Timestamp"] = timestamp
            headers["X-Anmei-Signature"] = "sha256=" + hmac_sha256_hex(self.secret, timestamp.encode() + b"." + body)
        try:
            # The gateway URL is tenant-configured: the guarded client (SSRF rules, no redirects).
            response = outbound.post(
                self.url, data=body, headers=headers, timeout=settings.NOTIFICATION_WEBHOOK_TIMEOUT_SECONDS
            )
        except outbound.OutboundError as exc:
            raise NotificationBackendError(f"push gateway unreachable: {exc.category}") from None
        if not 200 <= response.status_code < 300:
            raise NotificationBackendError(f"push gateway answered {response.status_code}")
        return True


def backend_for(name: str, *, url: str = "", secret: str = ""):
    """Instantiate the backend registered under `name` in settings.NOTIFICATION_BACKENDS.

    A project adds a carrier (SMS, WeCom app message…) by adding `name: "dotted.path.Class"`;
    the class takes `url` and `secret` keyword arguments (or none) and implements `send()`.
    Unknown names fall back to `stored`, so a notification is never lost to a typo.
    """
    from django.utils.module_loading import import_string

    registry = settings.NOTIFICATION_BACKENDS
    path = registry.get(name) or registry.get(StoredBackend.name)
    cls = import_string(path) if path else StoredBackend
    if cls is StoredBackend:
        return cls()
    try:
        return cls(url=url, secret=secret)
    except TypeError:
        return cls()
