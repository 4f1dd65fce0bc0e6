"""The HTTP doors: configuration changed through /api/ is audited as `api`, through /admin/ as `admin`."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from anmei.audit.services import audit_context


def _door(path: str) -> str:
    if path.startswith("/api/"):
        return "api"
    if path.startswith("/admin/"):
        return "admin"
    return "system"


class AuditDoorMiddleware:
    """Set the audit door and a lazy actor (DRF authenticates later and sets `request.user`)."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self._acall(request)
        with audit_context(door=_door(request.path), actor=lambda: getattr(request, "user", None)):
            return self.get_response(request)

    async def _acall(self, request):
        with audit_context(door=_door(request.path), actor=lambda: getattr(request, "user", None)):
            return await self.get_response(request)
