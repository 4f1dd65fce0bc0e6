from django.apps import AppConfig


class BotsConfig(AppConfig):
    verbose_name = "机器人"
    name = "anmei.bots"
    label = "bots"
