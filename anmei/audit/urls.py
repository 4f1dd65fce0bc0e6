from django.urls import path

from anmei.audit import api

# Included at /api/v1/ with an empty prefix: full paths here.
urlpatterns = [
    path("admin/audit-log", api.AuditLogApi.as_view(), name="audit-log"),
]
