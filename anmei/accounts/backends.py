from __future__ import annotations

from django.contrib.auth.backends import ModelBackend

from anmei.accounts.models import User


class TenantUsernameBackend(ModelBackend):
    """Authenticate by (tenant slug, username, password).

    Django admin's login form has no tenant field, so it accepts `slug/username` for tenant staff
    and a bare username for platform operators.
    """

    def authenticate(self, request, username=None, password=None, tenant=None, **kwargs):
        if username is None or password is None:
            return None
        if tenant is None and "/" in username:
            tenant, username = username.split("/", 1)
        query = User.objects.select_related("tenant")
        query = query.filter(tenant__slug=tenant) if tenant else query.filter(tenant__isnull=True)
        user = query.filter(username=username).first()
        if user is None:
            User().set_password(password)  # same work as a real check: no timing oracle for usernames
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
