from __future__ import annotations

from rest_framework.permissions import BasePermission

_STAFF = ("consultant", "admin")


def _role(request) -> str | None:
    user = request.user
    return getattr(user, "role", None) if user and user.is_authenticated else None


class IsOperator(BasePermission):
    message = "platform operators only"

    def has_permission(self, request, view):
        return _role(request) == "operator"


class IsTenantAdmin(BasePermission):
    message = "tenant admins only"

    def has_permission(self, request, view):
        return _role(request) == "admin"


class IsTenantAdminOrOperator(BasePermission):
    message = "tenant admins or platform operators only"

    def has_permission(self, request, view):
        return _role(request) in ("admin", "operator")


class IsConsultantOrAdmin(BasePermission):
    message = "consultants and admins only"

    def has_permission(self, request, view):
        return _role(request) in _STAFF


class IsTenantMember(BasePermission):
    """Anyone who belongs to a tenant (customers, consultants, admins)."""

    message = "tenant members only"

    def has_permission(self, request, view):
        return _role(request) in ("customer", *_STAFF)
