from __future__ import annotations

import logging
import time

from django.conf import settings

from anmei.common.errors import error_response
from anmei.common.metrics import HTTP_REQUEST_SECONDS

access_logger = logging.getLogger("anmei.access")


class RequestSizeLimitMiddleware:
    """Refuse oversized bodies with a 413 JSON error before any view parses them.

    DRF reads the raw stream, so Django's DATA_UPLOAD_MAX_MEMORY_SIZE does not protect JSON views.
    Multipart uploads get the larger upload limit.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response(400, "bad_request", "invalid Content-Length")
        content_type = request.META.get("CONTENT_TYPE", "")
        limit = (
            settings.MAX_UPLOAD_BODY_BYTES if content_type.startswith("multipart/") else settings.MAX_JSON_BODY_BYTES
        )
        if length > limit:
            return error_response(
                413, "payload_too_large", f"request body exceeds {limit} bytes", {"limit_bytes": limit}
            )
        return self.get_response(request)


class AccessLogMiddleware:
    """Log one line per request (static files aside): method, path (no query string), status, duration,
    tenant and user. It is the only access log: daphne's is off (anmei/serve.py), gunicorn's not asked for."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        HTTP_REQUEST_SECONDS.labels(
            method=request.method, route=match.route if match else "unmatched", status=response.status_code
        ).observe(time.perf_counter() - started)
        if not request.path.startswith(settings.STATIC_URL):
            # DRF authenticates on its own Request object; Django's request.user is the session user.
            drf_request = (getattr(response, "renderer_context", None) or {}).get("request")
            # `_user`, not `user`: reading `user` would authenticate again, and a failed authentication
            # (database down: already answered 503) would raise here and turn the answer into a 500.
            user = getattr(drf_request, "_user", None) or getattr(request, "user", None)
            authenticated = bool(user and getattr(user, "is_authenticated", False))
            access_logger.info(
                "http request",
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "tenant_id": getattr(user, "tenant_id", None) if authenticated else None,
                    "user_id": getattr(user, "id", None) if authenticated else None,
                },
            )
        return response
