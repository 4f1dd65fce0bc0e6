from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    verbose_name = "会话"
    name = "anmei.conversations"
    label = "conversations"
