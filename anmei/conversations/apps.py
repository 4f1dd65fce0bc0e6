from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "anmei.conversations"
    label = "conversations"
