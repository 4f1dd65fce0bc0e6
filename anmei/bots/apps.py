from django.apps import AppConfig


class BotsConfig(AppConfig):
    name = "anmei.bots"
    label = "bots"
