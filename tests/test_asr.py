"""Speech to text: a bot's voice message is transcribed once on the asr worker, pushed, searchable,
retried on transient errors, failed at once on permanent ones, and retried by hand."""

from __future__ import annotations

import math

import pytest
from asgiref.sync import sync_to_async

from anmei.asr import backends
from anmei.asr.audio import decode_to_16k_mono
from anmei.asr.models import AsrTask
from anmei.conversations.models import Message
from anmei.jobs.models import Job
from anmei.notifications.models import AdminAlert
from celery_config import app
from tests.fixtures_asr import voice_post
from tests.fixtures_automation import receive_type, ws_connect
from tests.fixtures_bots import make_bot
from tests.helpers import assert_error, poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]

AMR_GARBAGE = b"#!AMR\n" + b"\x7c" * 200  # sniffs as AMR, decodes to nothing


@pytest.fixture
def bot_a(tenant_a):
    return make_bot(tenant_a, callback_url="http://127.0.0.1:9/alpha")


def task_of(response) -> AsrTask:
    assert response.status_code == 202, response.content
    return AsrTask.objects.get(asr_task_id=response.json()["asr_task_id"])


def finished(task: AsrTask, timeout: float = 30) -> AsrTask:
    """Wait for the task's outcome and for its job to close (written just after the task's own commit)."""
    from anmei.jobs.models import Job

    def closed() -> bool:
        current = AsrTask.objects.get(pk=task.pk)
        job_done = (
            current.job_id is None or Job.objects.filter(pk=current.job_id, state__in=["done", "failed"]).exists()
        )
        return current.status in ("success", "failed") and job_done

    assert poll(closed, timeout=timeout)
    return AsrTask.objects.get(pk=task.pk)


@pytest.fixture
def faster_whisper(settings, tiny_en_model, media_dir):
    settings.ASR_BACKEND = "faster-whisper"
    settings.ASR_MODEL = tiny_en_model
    settings.ASR_DEVICE = "cpu"


async def test_voice_is_transcribed_by_faster_whisper_pushed_and_searchable(
    celery_worker, faster_whisper, carol, bot_a, speech_wav, as_user, async_db_closed
):
    # given consultant Carol on the console
    console = await ws_connect("/ws/console/", carol)

    # when a bot sends a customer's voice message
    response = await sync_to_async(voice_post)(bot_a[1], speech_wav)
    task = await sync_to_async(task_of)(response)

    # then Carol hears that it is processing, then gets the transcript with the seed's shape
    processing = await receive_type(console, "asr.processing", timeout=30)
    result = await receive_type(console, "asr.result", timeout=60)
    await console.disconnect()
    assert (processing["asr_task_id"], processing["message_id"], processing["status"]) == (
        task.asr_task_id,
        task.message_id,
        "processing",
    )
    assert (result["asr_task_id"], result["conversation_id"], result["status"]) == (
        task.asr_task_id,
        task.conversation_id,
        "success",
    )
    text = result["result"]["text"]
    for word in ("book", "consultation", "skin care", "Tuesday"):
        assert word in text, text
    assert (result["result"]["language"], result["result"]["duration"]) == ("en", 4.37)
    assert 0 < result["result"]["confidence"] <= 1
    assert result["audio_url"].startswith("/media/") and set(result) == {
        "type",
        "asr_task_id",
        "message_id",
        "conversation_id",
        "status",
        "result",
        "audio_url",
        "timestamp",
    }

    # and the transcript is on the message: message search finds the voice message by its words
    def search():
        return as_user(carol).get("/api/v1/conversations/messages/search?q=consultation").json()["results"]

    found = await sync_to_async(search)()
    assert [(m["id"], m["type"], m["content"]) for m in found] == [(task.message_id, "voice", text)]
    stored = await sync_to_async(AsrTask.objects.get)(pk=task.pk)
    assert (stored.attempts, stored.backend, stored.error_code) == (1, "faster-whisper", "")


def test_voice_transcript_feeds_the_bot_auto_reply_when_nobody_serves(
    celery_worker, faster_whisper, tenant_a, fake_bot, speech_silk
):
    # given nobody online and a keyword rule that only the spoken words can match
    bot, token, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    bot.auto_reply_rules = [{"keyword": "consultation", "reply": "周二上午有空，帮您预约吗？"}]
    bot.save(update_fields=["auto_reply_rules"])
    loads_before = backends.load_count

    # when a WeChat customer sends SILK voice, twice the same message and then a second one
    task = task_of(voice_post(token, speech_silk, "silk-1", name="voice.silk"))
    assert voice_post(token, speech_silk, "silk-1").json()["asr_task_id"] == task.asr_task_id
    second = task_of(voice_post(token, speech_silk, "silk-2"))

    # then each is transcribed once, and the rule answers what was said (not an away message)
    assert (finished(task).status, finished(second).status) == ("success", "success")
    assert poll(lambda: Message.objects.filter(external_id=f"autoreply:{task.message_id}").exists(), timeout=15)
    reply = Message.objects.get(external_id=f"autoreply:{task.message_id}")
    assert (reply.content, reply.payload["source"], reply.payload["in_reply_to"]) == (
        "周二上午有空，帮您预约吗？",
        "rule",
        task.message_id,
    )
    assert fake_bot.wait_for(lambda got: any((r.body or {}).get("message_id") == reply.id for r in got), timeout=15)
    assert poll(lambda: Job.objects.filter(kind="asr", state="done").count() == 2)
    assert AsrTask.objects.count() == 2
    assert backends.load_count - loads_before <= 1  # the model is loaded once per process and reused


def test_openai_whisper_backend_runs_a_random_initialised_tiny_checkpoint(
    settings, random_whisper_checkpoint, speech_wav
):
    # given openai-whisper with a tiny-sized checkpoint of random weights (no real weights here)
    settings.ASR_BACKEND, settings.ASR_MODEL, settings.ASR_DEVICE = "whisper", random_whisper_checkpoint, "cpu"
    samples = decode_to_16k_mono(speech_wav, ext="wav")

    # when it transcribes through the real load/transcribe path, twice
    backend = backends.asr_backend()
    transcript = backend.transcribe(samples[: 16000 * 2], language="en")

    # then the structure is right (the words are random-weight garbage) and the model was reused
    assert backends.asr_backend() is backend and backend.model.dims.n_audio_state == 384
    assert isinstance(transcript.text, str) and transcript.language == "en" and transcript.duration == 2.0
    assert transcript.confidence is None or 0 <= transcript.confidence <= 1


def test_openai_api_backend_sends_16k_mono_wav_and_reports_the_servers_answer(
    celery_worker, asr_api, bot_a, speech_silk, settings
):
    settings.ASR_API_KEY = "sk-asr"
    task = finished(task_of(voice_post(bot_a[1], speech_silk)))

    assert (task.status, task.text, task.language, task.attempts) == ("success", asr_api.text, "zh", 1)
    assert task.confidence == round(math.exp(-0.1), 4)
    [sent] = asr_api.requests
    assert (sent["model"], sent["format"], sent["authorization"]) == (
        "sensevoice-small",
        "verbose_json",
        "Bearer sk-asr",
    )
    assert (sent["wav"]["rate"], sent["wav"]["channels"]) == (16000, 1)
    assert abs(sent["wav"]["frames"] / 16000 - 4.37) < 0.05


def test_transient_backend_errors_retry_with_backoff_then_succeed(celery_worker, asr_api, bot_a, speech_wav):
    asr_api.statuses = [503, 503]

    task = finished(task_of(voice_post(bot_a[1], speech_wav)))

    assert (task.status, task.attempts, task.error_code) == ("success", 3, "")
    assert len(asr_api.requests) == 3
    assert poll(lambda: Job.objects.get(kind="asr").state == "done")  # recorded just after the task's commit
    assert Job.objects.get(kind="asr").attempts == 3


def test_exhausted_retries_fail_with_the_last_code_and_alert_the_admins(
    celery_worker, asr_api, as_user, alice, bot_a, speech_wav
):
    asr_api.statuses = [503, 503, 503]

    task = finished(task_of(voice_post(bot_a[1], speech_wav)))

    assert (task.status, task.attempts, task.error_code) == ("failed", 3, "ASR_BACKEND_ERROR")
    assert len(asr_api.requests) == 3
    body = as_user(alice).get(f"/api/v1/asr/tasks/{task.asr_task_id}").json()
    assert set(body) == {"asr_task_id", "status", "error", "audio_url", "timestamp"}
    assert (body["status"], body["error"]["code"]) == ("failed", "ASR_BACKEND_ERROR")
    assert poll(lambda: AdminAlert.objects.filter(tenant_id=task.tenant_id, source="asr").count() == 1)


def test_a_server_slower_than_the_timeout_fails_as_asr_timeout_after_its_retries(
    celery_worker, asr_api, settings, bot_a, speech_wav
):
    settings.ASR_API_TIMEOUT_SECONDS, settings.ASR_MAX_ATTEMPTS = 0.3, 2
    asr_api.delays = [1.0, 1.0]

    task = finished(task_of(voice_post(bot_a[1], speech_wav)))

    assert (task.status, task.attempts, task.error_code) == ("failed", 2, "ASR_TIMEOUT")
    assert len(asr_api.requests) == 2


def test_admin_retry_action_reschedules_failed_tasks_only(client, olga, tenant_a, bot_a, asr_api, speech_wav):
    # given one failed and one succeeded task (set directly: no worker in this test)
    failed = task_of(voice_post(bot_a[1], speech_wav, "a-1"))
    done = task_of(voice_post(bot_a[1], speech_wav, "a-2"))
    AsrTask.objects.filter(pk=failed.pk).update(status="failed", error_code="ASR_BAD_AUDIO")
    AsrTask.objects.filter(pk=done.pk).update(status="success", text="hi")
    Job.objects.filter(pk=failed.job_id).update(state="failed", attempts=1)
    Job.objects.filter(pk=done.job_id).update(state="done", attempts=1)

    # when an operator runs "Transcribe again" on both in Django admin
    client.force_login(olga)
    response = client.post(
        "/admin/asr/asrtask/",
        {"action": "transcribe_again", "_selected_action": [failed.pk, done.pk]},
        follow=True,
    )

    # then only the failed one is pending again, its job back to a first attempt
    assert response.status_code == 200
    assert [str(m) for m in response.context["messages"]] == ["1 task(s) scheduled again, 1 skipped."]
    assert [AsrTask.objects.get(pk=t.pk).status for t in (failed, done)] == ["pending", "success"]
    assert Job.objects.get(pk=failed.job_id).state == "pending" and Job.objects.get(pk=failed.job_id).attempts == 0


def test_undecodable_audio_fails_at_once_without_retries(celery_worker, asr_api, bot_a):
    task = finished(task_of(voice_post(bot_a[1], AMR_GARBAGE)))

    assert (task.status, task.attempts, task.error_code) == ("failed", 1, "ASR_BAD_AUDIO")
    assert asr_api.requests == []
    job = Job.objects.get(kind="asr")
    assert (job.state, job.attempts) == ("failed", 1)
    assert Message.objects.get(pk=task.message_id).payload["asr"] == {"status": "failed", "error_code": "ASR_BAD_AUDIO"}


def test_a_model_that_cannot_be_had_fails_at_once_with_a_clear_code(
    celery_worker, settings, media_dir, bot_a, speech_wav
):
    settings.ASR_BACKEND, settings.ASR_MODEL, settings.ASR_DEVICE = "whisper", "/nonexistent/model.pt", "cpu"

    task = finished(task_of(voice_post(bot_a[1], speech_wav)))

    assert (task.status, task.attempts, task.error_code) == ("failed", 1, "ASR_MODEL_UNAVAILABLE")
    assert "/nonexistent/model.pt" in task.error_message


def test_manual_retry_runs_a_failed_task_again_and_a_succeeded_one_only_with_force(
    celery_worker, asr_api, as_user, carol, ben, cathy, bot_a, speech_wav
):
    # given a task the server refused for good (a 4xx is not retried)
    asr_api.statuses = [400]
    task = finished(task_of(voice_post(bot_a[1], speech_wav)))
    assert (task.status, task.attempts, task.error_code) == ("failed", 1, "ASR_BACKEND_ERROR")
    url = f"/api/v1/asr/tasks/{task.asr_task_id}"

    # other tenants and customers cannot see or retry it
    assert_error(as_user(ben).get(url), 404, "not_found")
    assert_error(as_user(ben).post(f"{url}/retry", {}, format="json"), 404, "not_found")
    assert_error(as_user(cathy).post(f"{url}/retry", {}, format="json"), 403)
    assert AsrTask.objects.get(pk=task.pk).status == "failed"

    # when the consultant retries it
    retried = as_user(carol).post(f"{url}/retry", {}, format="json")

    # then it runs again from its first attempt and succeeds
    assert retried.status_code == 202 and retried.json()["status"] == "pending"
    done = finished(AsrTask.objects.get(pk=task.pk))
    assert (done.status, done.text, done.attempts) == ("success", asr_api.text, 1)
    assert_error(as_user(carol).post(f"{url}/retry", {}, format="json"), 409, "asr_task_succeeded")
    forced = as_user(carol).post(f"{url}/retry", {"force": True}, format="json")
    assert forced.status_code == 202
    assert poll(lambda: len(asr_api.requests) == 3)
    assert finished(AsrTask.objects.get(pk=task.pk)).status == "success"


def test_concurrent_repeats_of_one_voice_message_store_one_file_and_one_task(bot_a, media_dir, speech_wav):
    from tests.helpers import race

    results = race(3, lambda _: voice_post(bot_a[1], speech_wav, "same-id").json())

    assert len({r["asr_task_id"] for r in results}) == 1 and sorted(r["duplicate"] for r in results) == [
        False,
        True,
        True,
    ]
    assert AsrTask.objects.count() == 1 and Job.objects.filter(kind="asr").count() == 1
    assert len([p for p in media_dir.rglob("*") if p.is_file()]) == 1


def test_a_redelivered_task_does_not_transcribe_twice(celery_worker, asr_api, bot_a, speech_wav):
    task = finished(task_of(voice_post(bot_a[1], speech_wav)))
    job = Job.objects.get(kind="asr")

    app.send_task("workers.asr.transcribe", args=[job.id], queue="asr")
    app.send_task("workers.asr.transcribe", args=[job.id], queue="asr")
    poll(lambda: False, timeout=1.0)  # give the worker time to take both

    assert len(asr_api.requests) == 1
    assert AsrTask.objects.get(pk=task.pk).attempts == 1 and Job.objects.get(pk=job.pk).attempts == 1


def test_a_task_killed_mid_transcription_is_taken_again_by_the_sweep(asr_api, bot_a, speech_wav, celery_app):
    # given a voice message whose worker died mid-transcription (lease expired, task "processing")
    from datetime import timedelta

    from django.utils import timezone

    from anmei.jobs.services import jobs_sweep

    celery_app.control.purge()
    task = task_of(voice_post(bot_a[1], speech_wav))
    celery_app.control.purge()  # the first delivery died with the worker
    now = timezone.now()
    Job.objects.filter(kind="asr").update(state="running", attempts=1, lease_until=now - timedelta(seconds=1))
    AsrTask.objects.filter(pk=task.pk).update(status="processing", attempts=1)

    # when a worker is back and the sweep runs
    from celery.contrib.testing.worker import start_worker

    with start_worker(
        celery_app, pool="threads", concurrency=1, perform_ping_check=False, queues=["asr"], loglevel="WARNING"
    ) as worker:
        assert jobs_sweep() == 1
        done = finished(task)
        worker.pool.executor.shutdown(wait=True)

    # then the second attempt finishes it, once
    assert (done.status, done.attempts) == ("success", 2)
    assert len(asr_api.requests) == 1


def test_a_web_voice_message_is_transcribed_on_the_worker_like_a_bots(
    celery_worker, faster_whisper, tenant_a, cathy, carol, speech_wav
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from anmei.conversations.models import Conversation
    from tests.conftest import client_for

    conversation = Conversation.objects.create(tenant=tenant_a, customer=cathy, channel="web")

    def send(user, name: str):
        body = {"type": "voice", "file": SimpleUploadedFile(name, speech_wav, content_type="audio/wav")}
        response = client_for(user).post(f"/api/v1/conversations/{conversation.id}/messages", body, format="multipart")
        assert response.status_code == 201, response.content
        return Message.objects.get(pk=response.json()["id"])

    # when the web customer records a voice message in /chat/
    message = send(cathy, "voice.wav")

    # then its transcription was handed over with it (the job row), not its auto-reply yet
    asr_task_id = message.payload["asr_task_id"]
    job = Job.objects.get(kind="asr", key=f"asr:{asr_task_id}")
    assert (job.task, job.queue, job.payload) == (
        "workers.asr.transcribe",
        "asr",
        {"asr_task_id": asr_task_id, "message_id": message.id},
    )
    assert not Job.objects.filter(kind="bots.auto_reply", key=f"message:{message.id}", created_at__lte=job.created_at)

    # and the worker transcribes it with the real model, once, onto the message
    assert poll(lambda: AsrTask.objects.filter(asr_task_id=asr_task_id).exists(), timeout=30)
    task = finished(AsrTask.objects.get(asr_task_id=asr_task_id), timeout=90)
    assert (task.status, task.message_id, task.job_id, task.attempts) == ("success", message.id, job.id, 1)
    message.refresh_from_db()
    for word in ("book", "consultation", "Tuesday"):
        assert word in message.content, message.content
    assert message.payload["asr"]["status"] == "success"
    listed = client_for(carol).get(f"/api/v1/conversations/{conversation.id}/messages").json()["results"]
    assert [(m["id"], m["type"], m["content"]) for m in listed] == [(message.id, "voice", message.content)]
    # nobody serves the customer: the transcript, not the empty voice, goes to the auto-reply
    assert poll(lambda: Job.objects.filter(kind="bots.auto_reply", key=f"message:{message.id}").exists(), timeout=15)

    # and a consultant's voice reply is transcribed the same way
    client_for(carol).post(f"/api/v1/conversations/{conversation.id}/claim")
    reply = send(carol, "reply.wav")
    assert poll(lambda: AsrTask.objects.filter(message_id=reply.id).exists(), timeout=30)
    assert finished(AsrTask.objects.get(message_id=reply.id), timeout=90).status == "success"
    assert AsrTask.objects.count() == 2 and Job.objects.filter(kind="asr").count() == 2
