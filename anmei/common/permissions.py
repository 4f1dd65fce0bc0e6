from __future__ import annotations

from rest_framework.permissions import BasePermission

_STAFF = ("consultant", "admin")


def is_operator(user) -> bool:
    """True only for a tenant-less, active platform operator account (User.is_operator decides).

    The single "is operator" check for the API, Django admin, MCP admin and the dashboard page: a
    tenant user whose role field says `operator` gets no operator rights anywhere.
    """
    return bool(user is not None and getattr(user, "is_authenticated", False) and getattr(user, "is_operator", False))


def _role(request) -> str | None:
    user = request.user
    if not (user and user.is_authenticated):
        return None
    role = getattr(user, "role", None)
    if role == "operator" and not is_operator(user):
        return None  # a tenant account claiming the operator role has no role at all
    return role


class IsOperator(BasePermission):
    message = "platform operators only"

    def has_permission(self, request, view):
        return is_operator(request.user)


class IsTenantAdmin(BasePermission):
    message = "tenant admins only"

    def has_permission(self, request, view):
        return _role(request) == "admin"


class IsTenantAdminOrOperator(BasePermission):
    message = "tenant admins or platform operators only"

    def has_permission(self, request, view):
        return _role(request) == "admin" or is_operator(request.user)


class IsConsultantOrAdmin(BasePermission):
    message = "consultants and admins only"

    def has_permission(self, request, view):
        return _role(request) in _STAFF


class IsTenantMember(BasePermission):
    """Anyone who belongs to a tenant (customers, consultants, admins)."""

    message = "tenant members only"

    def has_permission(self, request, view):
        return _role(request) in ("customer", *_STAFF)
