from django.apps import AppConfig


class AsrConfig(AppConfig):
    name = "anmei.asr"
    label = "asr"
    verbose_name = "语音转写"
