"""The Celery app: Redis broker, late acks, JSON only, `default` and `asr` queues, beat from the DB."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "anmei.settings")

import django  # noqa: E402
from django.apps import apps  # noqa: E402
from django.conf import settings  # noqa: E402

# Made before django.setup(): admin autodiscovery there imports services that import `app` from
# this module (anmei.jobs.services), which must find it even while this module is still loading.
app = Celery("anmei")

if not apps.ready and not apps.loading:  # a worker process: set Django up before tasks import models
    django.setup()

from anmei.common import kombu_fix  # noqa: E402
from anmei.common.metrics import connect_celery_signals  # noqa: E402

connect_celery_signals()
kombu_fix.apply()  # a Redis restart must not kill the worker (see the module)

# Every task module under workers/ is listed here; tasks stay thin and call services in anmei/.
WORKER_MODULES = [
    "workers.diagnostics",
    "workers.registration",
    "workers.bots",
    "workers.blacklist",
    "workers.conversations",
    "workers.ai",
    "workers.jobs",
    "workers.asr",
    "workers.stats",
    "workers.notifications",
]

app.conf.update(
    broker_url=settings.CELERY_BROKER_URL,
    result_backend=settings.CELERY_RESULT_BACKEND,
    include=WORKER_MODULES,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    result_expires=3600,
    task_default_queue=settings.CELERY_DEFAULT_QUEUE,
    task_queues=[
        Queue(settings.CELERY_DEFAULT_QUEUE),
        Queue(settings.CELERY_ASR_QUEUE),
        Queue(settings.CELERY_REPLIES_QUEUE),
    ],
    task_routes={
        "workers.asr.*": {"queue": settings.CELERY_ASR_QUEUE},
        "workers.ai.auto_reply": {"queue": settings.CELERY_REPLIES_QUEUE},
        "workers.bots.auto_reply": {"queue": settings.CELERY_REPLIES_QUEUE},  # rows queued before the rename
        "workers.ai.suggest": {"queue": settings.CELERY_REPLIES_QUEUE},
    },
    # Longer than the longest countdown (60 s) and the longest task, or Redis redelivers early.
    broker_transport_options={"visibility_timeout": settings.CELERY_BROKER_VISIBILITY_TIMEOUT},
    broker_connection_retry_on_startup=True,
    worker_soft_shutdown_timeout=settings.CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT,
    worker_enable_soft_shutdown_on_idle=bool(settings.CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT),
    worker_hijack_root_logger=False,
    worker_send_task_events=True,
    # No "task-sent" event from every publisher: it doubled the cost of each publish (kombu makes a
    # Redis client per publish) on the bot webhook's path. Flower still sees every task from the
    # worker's received/started/succeeded events and the queue lengths from the broker.
    task_send_sent_event=False,
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    timezone=settings.TIME_ZONE,
    enable_utc=True,
)


# Periodic tasks of the bots/blacklist/conversations area. The DatabaseScheduler copies
# these into django_celery_beat on start; intervals are env knobs in settings.
app.conf.beat_schedule = {
    **(app.conf.beat_schedule or {}),
    "blacklist-expire-entries": {
        "task": "workers.blacklist.expire_entries",
        "schedule": float(settings.BLACKLIST_EXPIRY_SWEEP_SECONDS),
    },
    "blacklist-resync-lagging": {
        "task": "workers.blacklist.resync_lagging",
        "schedule": float(settings.BLACKLIST_EXPIRY_SWEEP_SECONDS),
    },
    "jobs-sweep": {
        "task": "workers.jobs.sweep",
        "schedule": float(settings.JOBS_SWEEP_SECONDS),
    },
    "jobs-alert-stuck": {
        "task": "workers.jobs.alert_stuck",
        "schedule": float(settings.JOBS_STUCK_ALERT_SECONDS),
    },
    "conversations-assign-sweep": {
        "task": "workers.conversations.assign_sweep",
        "schedule": float(settings.ROUTING_ASSIGN_SWEEP_SECONDS),
    },
    "conversations-end-inactive": {
        "task": "workers.conversations.end_inactive",
        "schedule": float(settings.CONVERSATION_INACTIVITY_SWEEP_SECONDS),
    },
    "bots-stale-sweep": {
        "task": "workers.bots.stale_sweep",
        "schedule": float(settings.BOT_STALE_SWEEP_SECONDS),
    },
    # Statistics (docs/metrics.md)
    "stats-rollup-recent": {
        "task": "workers.stats.rollup_recent",
        "schedule": float(settings.STATS_ROLLUP_INTERVAL_SECONDS),
    },
    "stats-rollup-daily": {
        "task": "workers.stats.rollup_daily",
        "schedule": float(settings.STATS_DAILY_INTERVAL_SECONDS),
    },
}
