from django.apps import AppConfig


class JobsConfig(AppConfig):
    verbose_name = "后台任务"
    name = "anmei.jobs"
    label = "jobs"

    def ready(self) -> None:
        from anmei.common.metrics import LIVE_COLLECTORS
        from anmei.jobs.metrics import jobs_figures, queue_work_figures

        if jobs_figures not in LIVE_COLLECTORS:
            LIVE_COLLECTORS.append(jobs_figures)
        if queue_work_figures not in LIVE_COLLECTORS:
            LIVE_COLLECTORS.append(queue_work_figures)
