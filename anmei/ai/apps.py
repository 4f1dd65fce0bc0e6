from django.apps import AppConfig


class AiConfig(AppConfig):
    verbose_name = "智能助手"
    name = "anmei.ai"
    label = "ai"
