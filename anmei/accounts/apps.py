from functools import wraps
from types import SimpleNamespace

from django.apps import AppConfig


def _throttled_login(login_view):
    """Django admin's login under the same per-address and per-account limits as the API login."""
    from django.http import HttpResponse

    from anmei.accounts.throttling import LoginAccountGlobalThrottle, LoginAccountThrottle
    from anmei.common.throttling import AuthRateThrottle

    holder = SimpleNamespace(throttle_scope="auth")

    @wraps(login_view)
    def view(request, *args, **kwargs):
        if request.method == "POST":
            for throttle_class in (AuthRateThrottle, LoginAccountThrottle, LoginAccountGlobalThrottle):
                throttle = throttle_class()
                if not throttle.allow_request(request, holder):
                    response = HttpResponse(
                        "Too many login attempts; try again later.", status=429, content_type="text/plain"
                    )
                    response["Retry-After"] = str(int(throttle.wait() or 60))
                    return response
        return login_view(request, *args, **kwargs)

    return view


class AccountsConfig(AppConfig):
    verbose_name = "账号"
    name = "anmei.accounts"
    label = "accounts"

    def ready(self):
        from django.contrib import admin

        admin.site.login = _throttled_login(admin.site.login)
