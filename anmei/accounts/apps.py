from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "anmei.accounts"
    label = "accounts"
