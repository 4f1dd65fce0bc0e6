"""Who answers a customer message is one rule (`Conversation.answerer`), and every path agrees with it.

The bot webhook's one-statement SQL writes the auto-reply job under its own WHERE clause; here the
same status × holder cases run through that SQL, through the general path and through
`auto_reply_schedule`, and each must write a job exactly when the rule says the bot answers.
"""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test import override_settings

from anmei.bots.services import bot_message_receive
from anmei.conversations.models import Conversation, Message
from anmei.conversations.services.handoffs import AUTO_REPLY_JOB, auto_reply_schedule
from anmei.jobs.models import Job
from tests.fixtures_bots import inbound, make_bot

S = Conversation.Status
A = Conversation.Answerer
HOLDERS = (False, True)  # a consultant on the row or not (waiting with one is a stale row, kept honest)


def test_the_rule_for_every_status_holder_and_presence():
    # given a conversation in every status, held or not, with consultants online or not
    seen = {}
    for status, held, online in itertools.product(S.values, HOLDERS, (False, True)):
        conversation = Conversation(status=status, consultant_id=7 if held else None)
        seen[(status, held, online)] = conversation.answerer(consultants_online=online)
    # then: ended → nobody; a consultant's claim or hand-off → that consultant; else console or bot
    expected = {}
    for status, held, online in seen:
        if status == S.ENDED:
            expected[(status, held, online)] = A.NOBODY
        elif held and status in (S.ACTIVE, S.TRANSFERRING):
            expected[(status, held, online)] = A.CONSULTANT
        else:
            expected[(status, held, online)] = A.CONSOLE if online else A.AUTO_REPLY
    assert seen == expected


def _jobs_for(message_id: int) -> int:
    return Job.objects.filter(kind=AUTO_REPLY_JOB["kind"], key=f"message:{message_id}").count()


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the one-statement path is PostgreSQL's")
@pytest.mark.parametrize("fast_path", [True, False], ids=["one-statement SQL", "general path"])
def test_the_webhook_writes_the_auto_reply_job_exactly_when_the_rule_says_the_bot_answers(tenant_a, carol, fast_path):
    bot = make_bot(tenant_a, callback_url="http://127.0.0.1:9")[0]
    outcomes = {}
    with override_settings(BOT_INGEST_FAST_PATH=fast_path):
        for n, (status, held) in enumerate(itertools.product([S.WAITING, S.ACTIVE, S.TRANSFERRING], HOLDERS)):
            # given an IM customer's open conversation in that status, held by Carol or by nobody
            first, _ = bot_message_receive(bot=bot, data=inbound(f"m-{n}-1", user_id=f"wx-{n}"))
            Conversation.objects.filter(pk=first.conversation_id).update(
                status=status, consultant=carol if held else None
            )
            conversation = Conversation.objects.get(pk=first.conversation_id)
            # when the customer writes again through the webhook
            message, _ = bot_message_receive(bot=bot, data=inbound(f"m-{n}-2", user_id=f"wx-{n}"))
            assert message.conversation_id == conversation.id
            # then a job exists exactly when the rule (presence unknown yet) gives the bot the answer
            wants_job = conversation.answerer(consultants_online=False) == A.AUTO_REPLY
            outcomes[(status, held)] = (_jobs_for(message.id), wants_job)
    assert {case: jobs for case, (jobs, _) in outcomes.items()} == {
        case: int(wants) for case, (_, wants) in outcomes.items()
    }


@pytest.mark.django_db
def test_the_hand_off_of_any_other_path_follows_the_rule_too(tenant_a, carol, cathy):
    # given a customer message in a conversation of every status, held or not
    for status, held in itertools.product(S.values, HOLDERS):
        conversation = Conversation.objects.create(
            tenant=tenant_a, customer=cathy, status=status, consultant=carol if held else None
        )
        message = Message.objects.create(
            tenant=tenant_a, conversation=conversation, sender_type="customer", sender=cathy, content="在吗"
        )
        # when the web chat or speech to text hands it over
        job = auto_reply_schedule(message=message, conversation=conversation)
        # then the job is written exactly when the rule gives the bot the answer
        assert (job is not None) == (conversation.answerer(consultants_online=False) == A.AUTO_REPLY), (status, held)
