"""Schedule, lease, finish and sweep durable jobs (models.Job).

The life of a job: `job_schedule` writes it (pending, due now or after a delay) inside the caller's
transaction and publishes its id to Celery on commit. The task takes the job with `job_lease`: a
conditional UPDATE (pending and due, or running with an expired lease → running, attempts + 1,
leased) decides which worker runs an attempt, so a duplicated or re-sent message does nothing.
The attempt ends done, pending again after the next countdown, or failed; each of those writes is
its own short statement after the work, never a lock held across it. `jobs_sweep` (beat) re-sends
what is due but was not taken within a grace period — the message was lost — and frees the leases
of workers that died.

The package: `schedule` (write and publish), `lease` (one attempt and its outcome), `sweep` (lost
messages, dead workers). Callers import from `anmei.jobs.services`.
"""

from anmei.jobs.services.lease import (
    _job_begin,
    job_lease,
    job_lease_heartbeat,
    job_lease_renew,
)
from anmei.jobs.services.schedule import (
    EARLY_SLACK,
    MESSAGE_PREFIX,
    JobFailed,
    JobRetry,
    job_publish,
    job_reschedule,
    job_schedule,
)
from anmei.jobs.services.sweep import broker_job_messages, jobs_sweep

__all__ = [
    "EARLY_SLACK",
    "MESSAGE_PREFIX",
    "JobFailed",
    "JobRetry",
    "_job_begin",
    "broker_job_messages",
    "job_lease",
    "job_lease_heartbeat",
    "job_lease_renew",
    "job_publish",
    "job_reschedule",
    "job_schedule",
    "jobs_sweep",
]
