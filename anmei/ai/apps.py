from django.apps import AppConfig


class AiConfig(AppConfig):
    name = "anmei.ai"
    label = "ai"
