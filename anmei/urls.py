from django.contrib import admin
from django.urls import include, path, re_path, register_converter
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from anmei.accounts.api import ClinicSignupApi
from anmei.common.api import IdConverter
from anmei.common.api_health import HealthApi, LiveApi, ReadyApi, metrics_view
from anmei.common.errors import api_not_found
from anmei.stats.api import BlacklistInterceptionListApi, ConversationRatingApi
from anmei.stats.api.audit_log import AuditLogApi

register_converter(IdConverter, "id")

api_v1 = [
    path("health", HealthApi.as_view(), name="health"),
    path("health/live", LiveApi.as_view(), name="health-live"),
    path("health/ready", ReadyApi.as_view(), name="health-ready"),
    # Signing up makes a tenant and its first admin (accounts sits above tenants).
    path("tenants/signup", ClinicSignupApi.as_view(), name="tenant-signup"),
    path("tenants/", include("anmei.tenants.urls")),
    path("auth/", include("anmei.accounts.urls")),
    path("conversations/", include("anmei.conversations.urls")),
    path("conversations", include("anmei.conversations.urls_root")),
    path("mcp-config/", include("anmei.mcp_admin.urls")),
    path("admin/registration-automation/", include("anmei.automation.urls")),
    path("", include("anmei.bots.urls")),
    path("", include("anmei.conversations.urls_admin")),
    # Interceptions are read with the tenant's time zone, which the stats app owns.
    path("blacklist/interceptions", BlacklistInterceptionListApi.as_view(), name="blacklist-interceptions"),
    path("", include("anmei.blacklist.urls")),
    path("", include("anmei.ai.urls")),
    path("", include("anmei.apikeys.urls")),
    # The audit trail is read by local days, with the tenant time zone the stats app owns.
    path("admin/audit-log", AuditLogApi.as_view(), name="audit-log"),
    path("console/", include("anmei.console.api_urls")),
    path("asr/", include("anmei.asr.urls")),
    path("stats/", include("anmei.stats.urls")),
    path("conversations/<id:conversation_id>/rating", ConversationRatingApi.as_view(), name="conversation-rating"),
    # Last: whatever matched nothing above is the API's JSON 404, also in DEBUG.
    re_path(r"^(?P<unmatched>.*)$", api_not_found, name="api-not-found"),
]

urlpatterns = [
    path("admin/registration-automation/", include("anmei.automation.urls_pages")),
    path("admin/stats/", include("anmei.stats.urls_pages")),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: English in Django admin
    path("api/v1/", include(api_v1)),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its init script as a file: the docs page works under the CSP (no inline script).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("", include("anmei.media.urls")),
    path("", include("anmei.console.urls")),
]

handler400 = "anmei.common.errors.handler400"
handler403 = "anmei.common.errors.handler403"
handler404 = "anmei.common.errors.handler404"
handler500 = "anmei.common.errors.handler500"
