"""WebSocket Origin check (cross-site WebSocket hijacking): Channels' OriginValidator.

A browser always sends Origin on a WebSocket handshake, so a page on another site is refused when
its Origin is not in `WS_ALLOWED_ORIGINS` (its own setting: the host names Django answers HTTP for,
ALLOWED_HOSTS, are not the sites allowed to open sockets). A handshake without Origin comes from a
non-browser client (a bot, a script, a test), which cannot be driven by a hostile page: it passes,
and still needs its single-use ticket.
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
    """An OriginValidator over `WS_ALLOWED_ORIGINS` that lets Origin-less (non-browser) clients through."""
    return _BrowserOriginValidator(application, list(settings.WS_ALLOWED_ORIGINS))
