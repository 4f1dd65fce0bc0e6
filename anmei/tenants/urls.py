from django.urls import path

from anmei.tenants import api

urlpatterns = [
    path("<id:tenant_id>/approve", api.TenantApproveApi.as_view(), name="tenant-approve"),
]
