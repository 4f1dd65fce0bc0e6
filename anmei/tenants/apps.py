from django.apps import AppConfig


class TenantsConfig(AppConfig):
    name = "anmei.tenants"
    label = "tenants"
