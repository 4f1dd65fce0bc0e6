from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "anmei.common"
    label = "common"
