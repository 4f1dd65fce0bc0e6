"""The jobs sweep re-sends only what is provably lost: a burst that is merely late is left alone.

No worker runs here: the burst's messages sit in the broker's queue (as they do when workers are
overloaded), the jobs are due past the grace period, and the sweep must see that their messages
are there. A Redis restart without persistence (the broker emptied) then makes every one lost,
and the sweep must re-send each of them — and count them on /metrics as lost, apart from re-sends.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from anmei.common.redis import get_redis
from anmei.jobs.models import Job
from anmei.jobs.services import job_schedule, jobs_sweep
from celery_config import app

pytestmark = [pytest.mark.django_db(transaction=True)]

BURST = 200
PROBE = "workers.diagnostics.job_probe"


def _burst() -> list[int]:
    with transaction.atomic():
        jobs = [
            job_schedule(kind="probe", key=f"burst-{i}", task=PROBE, payload={"marker": "probe:burst"})
            for i in range(BURST)
        ]
    # they have waited past the grace period (the workers are busy with what came before)
    Job.objects.filter(kind="probe").update(next_attempt_at=timezone.now() - timedelta(seconds=60))
    return [job.id for job in jobs]


def _queued() -> int:
    return get_redis().llen("default")


def test_a_fault_free_burst_late_in_the_queue_is_not_re_sent(celery_app, settings):
    # given a burst of jobs whose messages are all in the broker's queue, late but not lost
    celery_app.control.purge()
    settings.JOBS_SWEEP_BATCH = 1000
    _burst()
    assert _queued() == BURST
    # when the sweep runs (as beat does, several times)
    sent = [jobs_sweep() for _ in range(3)]
    # then nothing is re-sent (≤ 1 % is the target; a message in the queue is never lost)
    assert sum(sent) <= BURST // 100
    assert _queued() == BURST
    assert Job.objects.filter(kind="probe", resent__gt=0).count() <= BURST // 100


def test_a_broker_emptied_by_a_restart_has_every_lost_job_re_sent_and_counted(celery_app, settings, client):
    # given the same burst, then Redis restarted without persistence (its queues are gone)
    celery_app.control.purge()
    settings.JOBS_SWEEP_BATCH = 1000
    ids = _burst()
    get_redis().flushdb()
    # when the sweep runs
    sent = jobs_sweep()
    # then every job is re-sent once, recorded as lost
    assert sent == BURST
    assert _queued() == BURST
    assert sorted(Job.objects.filter(kind="probe", resent=1, lost=1).values_list("id", flat=True)) == sorted(ids)
    # and /metrics tells the re-sends and the losses apart
    settings.METRICS_TOKEN = "metrics-token"
    body = client.get("/metrics", HTTP_AUTHORIZATION="Bearer metrics-token").content.decode()
    assert f'anmei_jobs_resent_total{{kind="probe"}} {float(BURST)}' in body
    assert f'anmei_jobs_lost_total{{kind="probe"}} {float(BURST)}' in body


def test_a_job_whose_message_a_worker_holds_is_re_sent_only_after_the_held_grace(celery_app, settings):
    # given a due job whose message sits in kombu's unacked hash (a worker reserved it)
    celery_app.control.purge()
    settings.JOBS_RESEND_HELD_GRACE_SECONDS = 300
    job_id = _burst()[0]
    with app.connection_for_read() as connection:
        raw = connection.default_channel.client.lrange("default", 0, -1)
    held = next(r for r in raw if f'"id": "job-{job_id}-'.encode() in r or f'"id":"job-{job_id}-'.encode() in r)
    redis = get_redis()
    redis.delete("default")  # the other jobs of the burst are lost: they are re-sent, this one not
    redis.hset("unacked", "tag-1", f'[{held.decode()}, "", "default"]')
    # when the sweep runs within the held grace: it is left to the worker holding it
    assert Job.objects.get(pk=job_id).resent == 0
    jobs_sweep()
    assert Job.objects.get(pk=job_id).resent == 0
    # and once the job has been due past it, it is re-sent (that worker is stuck or gone)
    Job.objects.filter(pk=job_id).update(next_attempt_at=timezone.now() - timedelta(seconds=301))
    jobs_sweep()
    assert (Job.objects.get(pk=job_id).resent, Job.objects.get(pk=job_id).lost) == (1, 0)
