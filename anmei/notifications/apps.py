from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "anmei.notifications"
    label = "notifications"
