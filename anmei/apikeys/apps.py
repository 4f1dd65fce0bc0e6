from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    verbose_name = "API 密钥"
    name = "anmei.apikeys"
    label = "apikeys"
