"""Tenants see stable codes and fixed messages for failures, never internals: no exception class
names in step errors, no ffmpeg output or temporary paths in ASR_BAD_AUDIO. Details go to the log."""

from __future__ import annotations

import pytest

from anmei.asr.models import AsrTask
from anmei.automation.models import AutomationRun, AutomationStep
from anmei.automation.services import automation_settings_get_or_create, automation_step_execute
from anmei.notifications.models import AdminAlert
from tests.conftest import make_user
from tests.fixtures_asr import voice_post
from tests.fixtures_bots import make_bot
from tests.helpers import poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]

STEP_ERROR = "STEP_ERROR: the step failed (the details are in the server logs)"
INTERNALS = ("RuntimeError", "Traceback", "earlier steps did not finish", "/tmp/", "ffmpeg", "anmei-asr-")


def _shows_internals(text: str) -> bool:
    return any(marker in text for marker in INTERNALS)


def test_a_failed_step_shows_a_code_not_the_exception(as_user, alice, tenant_a):
    # given a running run whose deliver_welcome cannot work (no conversation yet), on its last attempt
    customer = make_user(tenant_a, "dora")
    run = AutomationRun.objects.create(tenant=tenant_a, customer=customer, status=AutomationRun.Status.RUNNING)
    last = automation_settings_get_or_create(tenant_id=tenant_a.id).max_retries + 1

    # when the step runs and raises an internal RuntimeError
    outcome = automation_step_execute(run_id=run.id, generation=run.generation, step="deliver_welcome", attempt=last)

    # then the step, the run, the admin alert and the dashboard carry the code and fixed text only
    assert (outcome.status, outcome.error) == ("failed", STEP_ERROR)
    assert AutomationStep.objects.get(run=run).error == STEP_ERROR
    run.refresh_from_db()
    assert (run.status, run.failed_step, run.error) == ("failed", "deliver_welcome", STEP_ERROR)
    alert = AdminAlert.objects.get(tenant=tenant_a)
    assert not _shows_internals(alert.message) and not _shows_internals(str(alert.details))
    response = as_user(alice).get("/api/v1/admin/registration-automation/dashboard")
    assert response.status_code == 200
    shown = [e["error"] for e in response.json()["recent_errors"]]
    assert shown == [STEP_ERROR]


def test_undecodable_voice_shows_a_fixed_message_without_ffmpeg_output(celery_worker, asr_api, as_user, alice):
    _, token, _ = make_bot(alice.tenant, callback_url="http://127.0.0.1:9/alpha")
    response = voice_post(token, b"#!AMR\n" + b"\x7c" * 200)  # sniffs as AMR, ffmpeg cannot decode it
    assert response.status_code == 202, response.content
    asr_task_id = response.json()["asr_task_id"]

    task = poll(lambda: AsrTask.objects.filter(asr_task_id=asr_task_id, status="failed").first(), timeout=30)

    assert task is not None
    assert (task.error_code, task.error_message) == ("ASR_BAD_AUDIO", "the audio could not be decoded")
    body = as_user(alice).get(f"/api/v1/asr/tasks/{asr_task_id}").json()
    assert body["error"] == {"code": "ASR_BAD_AUDIO", "message": "the audio could not be decoded"}
