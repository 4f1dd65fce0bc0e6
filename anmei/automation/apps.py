from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "anmei.automation"
    label = "automation"
    verbose_name = "注册自动化"
