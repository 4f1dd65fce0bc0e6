from django.apps import AppConfig


class StatsConfig(AppConfig):
    verbose_name = "统计"
    default_auto_field = "django.db.models.BigAutoField"
    name = "anmei.stats"
