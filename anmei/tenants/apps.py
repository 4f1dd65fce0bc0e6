from django.apps import AppConfig


class TenantsConfig(AppConfig):
    verbose_name = "租户"
    name = "anmei.tenants"
    label = "tenants"
