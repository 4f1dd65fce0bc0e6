"""The autoscaling signal `anmei_queue_work`: under a burst it equals the work in flight, each unit once.

A burst of durable jobs held in flight by a real worker: the exported figure is compared with the
work measured in the database (jobs not yet finished) at every step, and with what Celery's LLEN
alone reads. It falls to zero only when nothing runs.
"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from anmei.common.redis import get_redis
from anmei.jobs.models import Job
from tests.helpers import poll

pytestmark = pytest.mark.django_db(transaction=True)

BURST = 8
HOLD = "test:queue-work:hold"
MARKER = "test:queue-work:marker"


def _figures(anon) -> dict[tuple[str, str], float]:
    text = anon.get("/metrics").content.decode()
    return {
        (sample.name, sample.labels.get("queue", "")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("anmei_queue_")
    }


def _in_flight() -> int:
    """The measured work: jobs of the burst not finished yet."""
    return Job.objects.filter(kind="probe").exclude(state__in=[Job.State.DONE, Job.State.FAILED]).count()


def _started() -> int:
    return get_redis().llen(MARKER)


def _burst() -> None:
    from django.db import transaction

    from anmei.jobs.services import job_schedule

    with transaction.atomic():
        for index in range(BURST):
            job_schedule(
                kind="probe",
                key=f"burst-{index}",
                task="workers.diagnostics.job_probe",
                payload={"marker": MARKER, "hold": HOLD, "hold_seconds": 600},  # a slow machine must not let one go
            )


def test_queue_work_counts_waiting_reserved_and_lost_work_once_and_reads_zero_only_when_idle(
    anon, settings, celery_worker
):
    settings.DEBUG, settings.METRICS_TOKEN = True, ""
    settings.JOBS_RESEND_GRACE_SECONDS = 0  # the sweep below re-sends what the broker lost at once
    concurrency = 2  # the celery_worker fixture's threads
    # Given idle workers: the figure reads zero
    assert _figures(anon)[("anmei_queue_work", "default")] == 0
    # When a burst arrives and the workers take as many as they can run
    _burst()
    poll(lambda: _started() == concurrency, timeout=30)
    figures = _figures(anon)
    # Then the figure is the whole burst, while LLEN misses what the workers hold
    assert _in_flight() == BURST
    assert figures[("anmei_queue_work", "default")] == BURST
    assert figures[("anmei_queue_reserved", "default")] == concurrency
    assert figures[("anmei_queue_length", "default")] == BURST - concurrency
    print(
        f"\nburst of {BURST}: anmei_queue_work={figures[('anmei_queue_work', 'default')]:.0f}, "
        f"LLEN={figures[('anmei_queue_length', 'default')]:.0f}, measured in flight={_in_flight()}"
    )

    # When the broker loses every waiting message (a Redis restart without persistence)
    get_redis().delete("default")
    figures = _figures(anon)
    # Then the jobs no message stands for still count: nothing reads as idle
    assert figures[("anmei_queue_length", "default")] == 0
    assert figures[("anmei_queue_unsent_jobs", "default")] == BURST - concurrency
    assert figures[("anmei_queue_work", "default")] == BURST
    # And once the sweep has re-sent them, each unit still counts once
    from anmei.jobs.services import jobs_sweep

    assert jobs_sweep() == BURST - concurrency
    figures = _figures(anon)
    assert figures[("anmei_queue_unsent_jobs", "default")] == 0
    assert figures[("anmei_queue_work", "default")] == BURST

    # When the held jobs are let go one by one, the figure follows the measured work down
    readings = []
    for remaining in range(BURST - 1, -1, -1):
        get_redis().rpush(HOLD, "go")
        poll(lambda r=remaining: _in_flight() == r, timeout=30)
        poll(lambda r=remaining: _figures(anon)[("anmei_queue_work", "default")] == r, timeout=30)
        if remaining:  # held work left: the figure is stable and never zero
            poll(lambda r=remaining: _started() == min(BURST, BURST - r + concurrency), timeout=30)
            reading = _figures(anon)[("anmei_queue_work", "default")]
            assert reading == remaining > 0
            readings.append(reading)
    # Then it reads zero only now that nothing runs
    assert _figures(anon)[("anmei_queue_work", "default")] == 0
    assert readings == [float(r) for r in range(BURST - 1, 0, -1)]
    # And every held job ran once, held until let go: none timed out of its hold into a retry
    assert sorted(get_redis().lrange(MARKER, 0, -1)) == ["attempt:1"] * BURST
    assert set(Job.objects.filter(kind="probe").values_list("attempts", flat=True)) == {1}
