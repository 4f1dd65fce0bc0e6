from django.apps import AppConfig


class MediaConfig(AppConfig):
    name = "anmei.media"
    label = "media"
    verbose_name = "媒体"
