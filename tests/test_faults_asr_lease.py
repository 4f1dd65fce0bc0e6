"""A transcription's job lease is short and renewed while the model runs.

After a kill -9 the voice message goes back to the sweep within one lease (ASR_LEASE_SECONDS, at
most a minute), not after the whole time limit; a long but live transcription keeps its lease and
is never taken by a second worker.
"""

from __future__ import annotations

import pytest
from django.db import transaction
from django.utils import timezone

from anmei.asr.models import AsrTask
from anmei.jobs.models import Job
from anmei.jobs.services import _job_begin, job_lease_heartbeat, job_schedule, jobs_sweep
from tests.fixtures_asr import voice_post
from tests.fixtures_bots import make_bot
from tests.helpers import poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


def test_the_asr_lease_is_at_most_a_minute_by_default():
    from django.conf import settings

    assert settings.ASR_LEASE_SECONDS <= 60


def test_a_transcription_longer_than_its_lease_keeps_it_and_runs_once(
    tenant_a, asr_api, celery_worker, settings, speech_wav
):
    # given a lease of 1 s and a transcription server that takes 3 s
    settings.ASR_LEASE_SECONDS = 1
    settings.ASR_API_TIMEOUT_SECONDS = 20
    asr_api.delays = [3.0]
    _bot, token, _ = make_bot(tenant_a, callback_url="http://127.0.0.1:9/alpha")
    task = AsrTask.objects.get(asr_task_id=voice_post(token, speech_wav).json()["asr_task_id"])
    job = Job.objects.get(kind="asr")
    assert job.lease_seconds == 1
    # when the sweep runs all along the transcription (as beat does)
    assert poll(lambda: Job.objects.get(pk=job.pk).state == "running", timeout=15)

    def swept_until_done() -> bool:
        jobs_sweep()
        return AsrTask.objects.get(pk=task.pk).status == "success"

    assert poll(swept_until_done, timeout=30, interval=0.2)
    # then the heartbeat kept the lease: one attempt, one request to the server
    assert poll(lambda: Job.objects.get(pk=job.pk).state == "done")
    assert (AsrTask.objects.get(pk=task.pk).attempts, Job.objects.get(pk=job.pk).attempts) == (1, 1)
    assert Job.objects.get(pk=job.pk).resent == 0
    assert len(asr_api.requests) == 1


def test_a_lease_whose_heartbeat_stopped_goes_back_to_the_sweep_after_one_lease():
    # given a running attempt whose heartbeat renews a 1 s lease
    with transaction.atomic():
        job = job_schedule(kind="probe", key="beat", task="workers.diagnostics.job_probe", lease_seconds=1)
    Job.objects.filter(pk=job.pk).update(next_attempt_at=timezone.now())
    taken = _job_begin(job.pk)
    assert taken is not None
    with job_lease_heartbeat(taken, every_seconds=0.2):
        poll(lambda: False, timeout=1.5)  # longer than the lease
        # while it beats, the sweep leaves it alone
        assert jobs_sweep() == 0
        assert Job.objects.get(pk=job.pk).state == "running"
    # when the worker dies (the heartbeat stops with it), then after one lease the sweep re-sends it
    assert poll(lambda: jobs_sweep() == 1, timeout=5, interval=0.2)
    assert (Job.objects.get(pk=job.pk).state, Job.objects.get(pk=job.pk).resent) == ("pending", 1)
