from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "anmei.automation"
    label = "automation"
    verbose_name = "Registration automation"
