"""Durable jobs: the database row is the record, Celery the fast path, the sweep the safety net."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from anmei.common.redis import get_redis
from anmei.jobs.models import Job
from anmei.jobs.selectors import jobs_due_counts, jobs_stuck_counts
from anmei.jobs.services import _job_begin, job_reschedule, job_schedule, jobs_sweep
from celery_config import app
from tests.helpers import poll, race

pytestmark = pytest.mark.django_db(transaction=True)

PROBE = "workers.diagnostics.job_probe"


def schedule_probe(key: str, tenant=None, **payload) -> Job:
    with transaction.atomic():
        return job_schedule(
            kind="probe",
            key=key,
            task=PROBE,
            tenant_id=tenant.id if tenant else None,
            payload={"marker": f"probe:{key}", **payload},
            retry_countdowns=[0.2, 0.2, 0.2],
            max_attempts=3,
        )


def runs(key: str) -> list[str]:
    return get_redis().lrange(f"probe:{key}", 0, -1)


def state(job: Job) -> Job:
    return Job.objects.get(pk=job.pk)


def test_scheduled_job_runs_once_after_commit_and_duplicates_do_nothing(celery_worker, tenant_a):
    # given a job scheduled in a committed transaction
    job = schedule_probe("once", tenant_a)

    # when the worker has run it, and the same key is scheduled again and its id re-sent
    assert poll(lambda: state(job).state == Job.State.DONE)
    again = schedule_probe("once", tenant_a)
    app.send_task(PROBE, args=[job.pk])
    app.send_task(PROBE, args=[job.pk])

    # then there is one row, one attempt, and one execution
    assert again.pk == job.pk
    assert poll(lambda: len(runs("once")) >= 1)
    assert Job.objects.filter(kind="probe", key="once").count() == 1
    done = state(job)
    assert (done.state, done.attempts, done.finished_at is not None) == (Job.State.DONE, 1, True)
    poll(lambda: False, timeout=0.5)
    assert runs("once") == ["attempt:1"]


def test_job_of_a_rolled_back_transaction_neither_exists_nor_runs(celery_worker):
    # given a job scheduled in a transaction that rolls back
    with pytest.raises(RuntimeError), transaction.atomic():
        job_schedule(kind="probe", key="rolled", task=PROBE, payload={"marker": "probe:rolled"})
        raise RuntimeError("the change that caused the job failed")

    # then nothing was recorded or published
    poll(lambda: False, timeout=0.5)
    assert not Job.objects.filter(key="rolled").exists()
    assert runs("rolled") == []


def test_failed_attempts_retry_on_the_countdowns_then_succeed(celery_worker):
    # given a job whose first two attempts raise
    job = schedule_probe("flaky", fail_attempts=2)

    # then the third attempt succeeds and the row says so
    assert poll(lambda: state(job).state == Job.State.DONE, timeout=15)
    assert runs("flaky") == ["attempt:1", "attempt:2", "attempt:3"]
    assert state(job).attempts == 3


def test_exhausted_attempts_fail_the_job_and_tell_its_owner_once(celery_worker):
    # given a job that always raises, three attempts allowed
    job = schedule_probe("broken", fail_attempts=99)

    # then it ends failed after three attempts, and on_failed ran once
    assert poll(lambda: state(job).state == Job.State.FAILED, timeout=15)
    poll(lambda: False, timeout=0.5)
    assert runs("broken") == [
        "attempt:1",
        "attempt:2",
        "attempt:3",
        "failed:attempts exhausted: RuntimeError: probe failure 3",
    ]
    assert state(job).last_error == "attempts exhausted: RuntimeError: probe failure 3"


def test_permanent_failure_fails_at_once_without_retries(celery_worker):
    job = schedule_probe("bad-input", permanent=True)

    assert poll(lambda: state(job).state == Job.State.FAILED)
    poll(lambda: False, timeout=0.5)
    assert runs("bad-input") == ["attempt:1", "failed:PROBE_PERMANENT: asked to fail"]


def test_sweep_resends_a_job_whose_message_was_lost(celery_worker, settings):
    # given a committed job whose message the broker lost (purged before any worker took it)
    settings.JOBS_RESEND_GRACE_SECONDS = 0
    with transaction.atomic():
        job = Job.objects.create(
            kind="probe",
            key="lost",
            task=PROBE,
            payload={"marker": "probe:lost"},
            next_attempt_at=timezone.now() - timedelta(seconds=30),
        )
    assert runs("lost") == []

    # when the sweep runs
    sent = jobs_sweep()

    # then the job runs once and its row records the re-send
    assert sent == 1
    assert poll(lambda: state(job).state == Job.State.DONE)
    assert runs("lost") == ["attempt:1"]
    assert state(job).resent == 1


def test_sweep_gives_a_dead_workers_lease_to_a_new_attempt(celery_worker):
    # given a job leased by a worker that died mid-attempt (its lease has expired)
    now = timezone.now()
    job = Job.objects.create(
        kind="probe",
        key="orphan",
        task=PROBE,
        payload={"marker": "probe:orphan"},
        state=Job.State.RUNNING,
        attempts=1,
        lease_until=now - timedelta(seconds=1),
        next_attempt_at=now - timedelta(seconds=60),
    )

    # when the sweep runs
    assert jobs_sweep() == 1

    # then a second attempt runs and finishes the job
    assert poll(lambda: state(job).state == Job.State.DONE)
    assert runs("orphan") == ["attempt:2"]


def test_sweep_leaves_jobs_alone_within_the_grace_period_and_live_leases(settings):
    settings.JOBS_RESEND_GRACE_SECONDS = 60
    now = timezone.now()
    Job.objects.create(kind="probe", key="queued", task=PROBE, next_attempt_at=now - timedelta(seconds=5))
    Job.objects.create(
        kind="probe",
        key="busy",
        task=PROBE,
        state=Job.State.RUNNING,
        lease_until=now + timedelta(seconds=60),
        next_attempt_at=now - timedelta(seconds=300),
    )

    assert jobs_sweep() == 0
    assert Job.objects.get(key="queued").resent == 0


def test_only_one_of_two_concurrent_workers_takes_a_job():
    job = Job.objects.create(kind="probe", key="race", task=PROBE, next_attempt_at=timezone.now())

    taken = race(2, lambda _: _job_begin(job.pk))

    assert sorted(result is not None for result in taken) == [False, True]
    assert state(job).attempts == 1


def test_a_job_due_later_is_not_taken_early():
    job = Job.objects.create(
        kind="probe", key="later", task=PROBE, next_attempt_at=timezone.now() + timedelta(seconds=30)
    )

    assert _job_begin(job.pk) is None
    assert state(job).attempts == 0


def test_reschedule_runs_a_failed_job_again_from_its_first_attempt(celery_worker):
    job = schedule_probe("again", permanent=True)
    assert poll(lambda: state(job).state == Job.State.FAILED)

    assert job_reschedule(job_id=job.pk) is True

    assert poll(lambda: runs("again").count("attempt:1") == 2)
    assert poll(lambda: state(job).state == Job.State.FAILED)


def test_stuck_and_due_counts_are_per_kind_and_per_tenant(tenant_a, tenant_b):
    old = timezone.now() - timedelta(seconds=3600)
    Job.objects.create(tenant=tenant_a, kind="asr", key="a1", task=PROBE, next_attempt_at=old)
    Job.objects.create(tenant=tenant_a, kind="asr", key="a2", task=PROBE, next_attempt_at=timezone.now())
    Job.objects.create(tenant=tenant_b, kind="summary", key="b1", task=PROBE, next_attempt_at=old)
    Job.objects.create(tenant=tenant_b, kind="summary", key="b2", task=PROBE, state=Job.State.DONE, next_attempt_at=old)

    assert jobs_stuck_counts() == {"asr": 1, "summary": 1}
    assert jobs_stuck_counts(tenant_id=tenant_a.id) == {"asr": 1}
    assert jobs_stuck_counts(tenant_id=tenant_b.id) == {"summary": 1}
    assert jobs_due_counts(tenant_id=tenant_a.id) == {"asr": 2}
