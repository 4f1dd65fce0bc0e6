"""The away message (nobody online, no rule or agent answer): once per conversation, after the welcome."""

from __future__ import annotations

import pytest
from celery.contrib.testing.worker import start_worker

from anmei.conversations.models import Message
from anmei.jobs.models import Job
from tests.fixtures_bots import bot_client, inbound, make_bot
from tests.helpers import poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


def _worker(app, queues):
    return start_worker(app, pool="threads", concurrency=1, perform_ping_check=False, loglevel="WARNING", queues=queues)


def test_away_message_waits_for_the_welcome_and_is_sent_once(tenant_a, fake_bot, celery_app, settings):
    # given an IM bot, nobody online, no agent, the tenant's registration welcome on (its template)
    settings.BOT_AUTO_REPLY_MAX_ATTEMPTS = 50  # the wait below must not exhaust the job
    bot, token, _ = make_bot(tenant_a, callback_url=fake_bot.url, fake=fake_bot)
    celery_app.control.purge()

    # when a new WeChat customer writes three messages and only the replies queue is served
    ids = [
        bot_client(token).post("/api/v1/bot/messages", inbound(f"m-{n}", content=text), format="json").json()
        for n, text in enumerate(["你好", "在吗", "想问玻尿酸"])
    ]
    conversation_id = ids[0]["conversation_id"]
    away = Message.objects.filter(conversation_id=conversation_id, payload__source="away")
    replies = Job.objects.filter(kind="bots.auto_reply")
    with _worker(celery_app, ["replies"]) as worker:
        # then the auto-replies wait (retry) while the welcome is not stored, and send nothing
        assert poll(lambda: replies.filter(attempts__gte=1, state="pending").count() == 3, timeout=30)
        assert away.count() == 0
        worker.pool.executor.shutdown(wait=True)

    # when the registration automation runs too
    with _worker(celery_app, ["default", "replies"]) as worker:
        assert poll(lambda: replies.filter(state="done").count() == 3, timeout=60)
        worker.pool.executor.shutdown(wait=True)

    # then exactly one away message was sent in the conversation, after the welcome
    welcome = Message.objects.get(conversation_id=conversation_id, payload__kind="welcome")
    (sent,) = away
    assert sent.id > welcome.id and sent.created_at >= welcome.created_at
    assert Message.objects.filter(conversation_id=conversation_id, sender_type="bot").count() == 2
