from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "anmei.jobs"
    label = "jobs"
