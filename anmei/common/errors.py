"""The one error shape of API.md and the handler that maps every failure onto it.

`{"error": {"code": "...", "message": "...", "details": {...}}}` with a 4xx status for anything
the client did wrong; unexpected exceptions become a 500 with no traceback in the body.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response

logger = logging.getLogger("anmei.errors")


class ApplicationError(Exception):
    """A domain error with a stable machine-readable code.

    Services raise it; the API layer turns it into the error JSON with `status_code`.
    """

    status_code = status.HTTP_400_BAD_REQUEST

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        status_code: int | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.code = code
        self.message = message or code.replace("_", " ")
        self.details = details or {}
        if status_code is not None:
            self.status_code = status_code
        super().__init__(self.message)


class NotFoundError(ApplicationError):
    status_code = status.HTTP_404_NOT_FOUND

    def __init__(self, what: str = "resource") -> None:
        super().__init__("not_found", f"{what} not found")


class ConflictError(ApplicationError):
    status_code = status.HTTP_409_CONFLICT


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(status_code: int, code: str, message: str, details: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(code, message, details), status=status_code)


_DRF_CODES = {
    exceptions.ValidationError: "validation_error",
    exceptions.ParseError: "malformed_request",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


def first_message(detail: Any) -> str:
    """The first error of a DRF ValidationError detail, as `field: message`."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            return f"{key}: {first_message(value)}"
    if isinstance(detail, list) and detail:
        return first_message(detail[0])
    return str(detail)


def dependency_down(exc: BaseException) -> str | None:
    """Name the infrastructure an exception says is unreachable (redis, broker, database), else None.

    A Redis outage (throttle cache, tickets, presence), a broker that refuses a publish, or a
    database that went away is the platform's problem, not the client's: 503, never a 500.
    """
    import redis
    from django.db import InterfaceError as DbInterfaceError
    from django.db import OperationalError as DbOperationalError
    from kombu.exceptions import OperationalError as BrokerOperationalError

    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return "redis"
    if isinstance(exc, BrokerOperationalError):
        return "broker"
    if isinstance(exc, (DbOperationalError, DbInterfaceError)):
        return "database"
    return None


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map domain, DRF and Django exceptions to the API.md error JSON."""
    if isinstance(exc, ApplicationError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    dependency = dependency_down(exc)
    if dependency is not None:
        logger.warning("dependency unavailable", extra={"dependency": dependency, "error": type(exc).__name__})
        response = Response(
            error_body(
                "dependency_unavailable",
                f"{dependency} is unavailable, try again shortly",
                {"dependency": dependency},
            ),
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
        response["Retry-After"] = "5"
        return response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None  # unexpected: Django's 500 handler answers (JSON, no traceback)

    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), None)
    detail = exc.detail
    details: dict[str, Any] = {}
    if isinstance(exc, exceptions.ValidationError):
        details = {"fields": detail if isinstance(detail, dict) else {"non_field_errors": detail}}
        message = first_message(detail)
    else:
        if code is None:
            codes = exc.get_codes()
            code = codes if isinstance(codes, str) else "error"
        elif isinstance(exc, exceptions.AuthenticationFailed) and isinstance(exc.get_codes(), str):
            code = exc.get_codes() if exc.get_codes() != "authentication_failed" else code
        message = str(detail)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details["retry_after_seconds"] = int(exc.wait)
    response = Response(error_body(code, message, details), status=exc.status_code)
    if getattr(exc, "auth_header", None):
        response["WWW-Authenticate"] = exc.auth_header
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(int(exc.wait))
    return response


def handler400(request, exception=None):  # noqa: ARG001
    return error_response(400, "bad_request", "bad request")


def handler403(request, exception=None):  # noqa: ARG001
    return error_response(403, "permission_denied", "permission denied")


def handler404(request, exception=None):  # noqa: ARG001
    return error_response(404, "not_found", "not found")


@csrf_exempt
def api_not_found(request, unmatched: str = ""):  # noqa: ARG001
    """Answer any unmatched `/api/v1/` path with the error JSON, DEBUG or not.

    With DEBUG on Django renders its HTML technical 404 instead of `handler404`; the API's clients
    (and its OpenAPI promise) expect the error shape whatever the mode.
    """
    return error_response(404, "not_found", "not found")


def handler500(request):  # noqa: ARG001
    return error_response(500, "server_error", "internal server error")


def csrf_failure(request, reason: str = "") -> JsonResponse:
    """Django's CSRF_FAILURE_VIEW: a 403 in the error contract; the reason stays in our logs."""
    logger.info("csrf check failed", extra={"reason": reason, "path": request.path})
    return error_response(403, "csrf_failed", "CSRF check failed: reload the page and try again")
