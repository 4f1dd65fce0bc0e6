from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "anmei.common"
    label = "common"

    def ready(self):
        # Every Django process (web, MCP sidecar, management commands) must send tasks through the
        # project's Celery app. The task modules use @shared_task, which binds to whichever app is
        # current when a task is sent: without this import a web process that had not yet touched
        # celery_config sent them to Celery's default app, amqp://localhost.
        import celery_config  # noqa: F401
