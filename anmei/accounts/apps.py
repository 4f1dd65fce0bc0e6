from functools import wraps
from types import SimpleNamespace

from django.apps import AppConfig


def _throttled_login(login_view):
    """Django admin's login under the same per-address and per-account limits as the API login."""
    from django.http import HttpResponse

    from anmei.common.throttling import AccountGlobalRateThrottle, AccountRateThrottle, AuthRateThrottle

    holder = SimpleNamespace(throttle_scope="auth")

    @wraps(login_view)
    def view(request, *args, **kwargs):
        if request.method == "POST":
            for throttle_class in (AuthRateThrottle, AccountRateThrottle, AccountGlobalRateThrottle):
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
    name = "anmei.accounts"
    label = "accounts"

    def ready(self):
        from django.contrib import admin

        from anmei.accounts.services import account_lockout_hand_off
        from anmei.common.throttling import account_throttled

        admin.site.login = _throttled_login(admin.site.login)
        account_throttled.connect(account_lockout_hand_off, dispatch_uid="accounts.account_lockout_hand_off")
