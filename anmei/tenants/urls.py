from django.urls import path

from anmei.tenants import api

urlpatterns = [
    path("public", api.TenantPublicApi.as_view(), name="tenant-public"),
    path("<id:tenant_id>/approve", api.TenantApproveApi.as_view(), name="tenant-approve"),
]
