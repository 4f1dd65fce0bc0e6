from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "anmei.console"
    label = "console"
