"""WebSocket Origin check (cross-site WebSocket hijacking): Channels' AllowedHostsOriginValidator.

A browser always sends Origin on a WebSocket handshake, so a page on another site is refused when
its Origin's host is not in ALLOWED_HOSTS. A handshake without Origin comes from a non-browser
client (a bot, a script, a test), which cannot be driven by a hostile page: it passes, and still
needs its single-use ticket.
"""

from __future__ import annotations

from channels.security.websocket import OriginValidator
from django.conf import settings


class _BrowserOriginValidator(OriginValidator):
    def valid_origin(self, parsed_origin):
        if parsed_origin is None:
            return True
        return super().valid_origin(parsed_origin)


def allowed_hosts_origin_validator(application):
    """AllowedHostsOriginValidator that lets Origin-less (non-browser) clients through."""
    allowed_hosts = settings.ALLOWED_HOSTS
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return _BrowserOriginValidator(application, allowed_hosts)
