from django.apps import AppConfig


class ApiKeysConfig(AppConfig):
    name = "anmei.apikeys"
    label = "apikeys"
