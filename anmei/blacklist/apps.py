from django.apps import AppConfig


class BlacklistConfig(AppConfig):
    verbose_name = "黑名单"
    name = "anmei.blacklist"
    label = "blacklist"
