"""Writes for registration automation: starting, advancing, failing and retrying a run.

A run is one customer's chain of five steps (steps.py). Each step attempt is executed through
`automation_step_execute`, which records an AutomationStep row and decides between success, a
retry after the countdown from the tenant's run-time settings, and failure (run failed +
AdminAlert). Every write that must happen once is guarded by a database constraint, so a
redelivered, retried or duplicated task changes nothing the second time.

The package: `config` (settings), `runs` (start, schedule, run and retry), `steps` (one attempt,
recorded, and the run's end) and `welcome`. Callers import from `anmei.automation.services`.
"""

from anmei.automation.services.config import (
    ALERT_SOURCE,
    STEP_TASK,
    automation_settings_get_or_create,
    automation_settings_update,
)
from anmei.automation.services.runs import (
    _schedule_next,
    automation_job_failed,
    automation_run_retry,
    automation_run_start,
    automation_run_start_job,
    automation_step_run,
    automation_step_schedule,
)
from anmei.automation.services.steps import (
    STEP_ERROR,
    StepOutcome,
    _step_record,
    automation_run_fail,
    automation_run_finish,
    automation_step_execute,
    step_error,
)
from anmei.automation.services.welcome import (
    automation_conversation_welcome,
)

__all__ = [
    "ALERT_SOURCE",
    "STEP_ERROR",
    "STEP_TASK",
    "StepOutcome",
    "_schedule_next",
    "_step_record",
    "automation_conversation_welcome",
    "automation_job_failed",
    "automation_run_fail",
    "automation_run_finish",
    "automation_run_retry",
    "automation_run_start",
    "automation_run_start_job",
    "automation_settings_get_or_create",
    "automation_settings_update",
    "automation_step_execute",
    "automation_step_run",
    "automation_step_schedule",
    "step_error",
]
