from django.apps import AppConfig


class BotsConfig(AppConfig):
    verbose_name = "机器人"
    name = "anmei.bots"
    label = "bots"

    def ready(self) -> None:
        from anmei.bots.metrics import bots_figures
        from anmei.common.metrics import LIVE_COLLECTORS

        if bots_figures not in LIVE_COLLECTORS:
            LIVE_COLLECTORS.append(bots_figures)
