"""Staff pages (Django admin): Chinese first, and every date and time on the tenant's clock.

The API keeps Django's default language (its error messages are a contract) and answers in UTC
ISO timestamps; the admin pages are read by clinic staff, who live in their tenant's time zone
(the one statistics use: `anmei.stats.services.rollup.tenant_zone`).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone, translation

from anmei.stats.services.rollup import tenant_zone

ADMIN_PREFIX = "/admin/"


class StaffPagesLocaleMiddleware:
    """Activate the admin language (the `django_language` cookie, else ADMIN_LANGUAGE_CODE) and the
    staff user's tenant time zone (operators: STATS_DEFAULT_TIME_ZONE) for /admin/ requests."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(ADMIN_PREFIX):
            return self.get_response(request)
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
        language = chosen if chosen in dict(settings.LANGUAGES) else settings.ADMIN_LANGUAGE_CODE
        user = getattr(request, "user", None)
        tenant_id = getattr(user, "tenant_id", None) if user is not None and user.is_authenticated else None
        zone = tenant_zone(tenant_id) if tenant_id else ZoneInfo(settings.STATS_DEFAULT_TIME_ZONE)
        with translation.override(language):
            request.LANGUAGE_CODE = language
            timezone.activate(zone)
            try:
                response = self.get_response(request)
                if hasattr(response, "render") and callable(response.render) and not response.is_rendered:
                    response.render()  # render while the language and zone are active
            finally:
                timezone.deactivate()
        response.headers.setdefault("Content-Language", language)
        return response
