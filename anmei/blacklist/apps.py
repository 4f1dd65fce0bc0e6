from django.apps import AppConfig


class BlacklistConfig(AppConfig):
    name = "anmei.blacklist"
    label = "blacklist"
