"""Summaries when a conversation ends: a durable job after commit, exactly once, structured output
validated (one retry, then the local extractive fallback), `summary.ready` to the staff concerned."""

from __future__ import annotations

import pytest

from anmei.ai.models import AgentCall, ConversationSummary
from anmei.conversations.models import Conversation
from anmei.conversations.services import message_create
from anmei.jobs.models import Job
from tests.conftest import make_user
from tests.fixtures_ai import summary_json, use_openai
from tests.helpers import assert_error, poll

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fast_hashing")]


def _active(tenant, customer, consultant) -> Conversation:
    conversation = Conversation.objects.create(tenant=tenant, customer=customer, consultant=consultant, status="active")
    for sender, text in [
        ("customer", "你好，我想了解玻尿酸。玻尿酸能维持多久？"),
        ("consultant", "玻尿酸一般维持6到12个月。价格根据品牌在3000到8000元。"),
        ("customer", "好的，我再考虑一下热玛吉。"),
    ]:
        message_create(conversation=conversation, sender_type=sender, content=text)
    return conversation


def _ready(conversation_id: int):
    return ConversationSummary.objects.filter(conversation_id=conversation_id, status="ready").first()


def test_end_stores_one_llm_summary_and_pushes_it_to_the_consultant_only(
    listen, tenant_a, tenant_b, carol, cathy, ben, as_user, fake_openai, celery_worker
):
    # given an active conversation of Carol's, an LLM that answers in JSON, and listeners
    dave = make_user(tenant_a, "dave", "consultant")
    use_openai(tenant_a, fake_openai)
    fake_openai.replies.append(summary_json())
    conversation = _active(tenant_a, cathy, carol)
    listener = listen(carol, dave, ben)

    # when Carol ends it, twice
    first = as_user(carol).post(f"/api/v1/conversations/{conversation.id}/end")
    second = as_user(carol).post(f"/api/v1/conversations/{conversation.id}/end")

    # then one summary is stored from the model's JSON and pushed to Carol, nobody else
    assert first.status_code == 200
    assert_error(second, 409, "illegal_transition")
    event = listener.next(carol, "summary.ready")
    assert event["conversation_id"] == conversation.id
    assert event["summary"] == {
        "main_issues": "客户想了解玻尿酸的维持时间和价格",
        "solution": "顾问说明了维持6到12个月及价格区间",
        "evaluation": "回复及时、专业",
        "follow_up": "三天后回访是否预约面诊",
    }
    assert listener.next(dave, "summary.ready", timeout=0.5) is None
    assert listener.next(ben, "summary.ready", timeout=0.5) is None
    body = as_user(carol).get(f"/api/v1/conversations/{conversation.id}/summary").json()
    assert (body["status"], body["model"], body["summary"]) == ("ready", "fake-gpt", event["summary"])
    assert set(body) == {"conversation_id", "status", "summary", "model", "created_at"}
    # the model saw the whole conversation through the context builder, without tools, in JSON mode
    (sent,) = fake_openai.requests
    assert sent["response_format"] == {"type": "json_object"} and "tools" not in sent
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    call = AgentCall.objects.get(purpose="summary")
    assert (call.success, call.conversation_id, call.total_tokens, call.tokens_counted_locally) == (
        True,
        conversation.id,
        70,
        False,
    )

    # and a redelivered task (same job) does nothing: no second model call, one job, one row
    from workers.ai import summarize

    job = Job.objects.get(kind="ai_summary")
    summarize.delay(job.id)
    summarize.delay(job.id)
    assert poll(lambda: Job.objects.get(pk=job.pk).state == "done")
    assert len(fake_openai.requests) == 1 and ConversationSummary.objects.count() == 1
    # another tenant cannot read it
    assert_error(as_user(ben).get(f"/api/v1/conversations/{conversation.id}/summary"), 404)


def test_a_malformed_answer_is_asked_again_once_then_the_local_summary_is_stored(
    tenant_a, carol, cathy, as_user, fake_openai, celery_worker
):
    use_openai(tenant_a, fake_openai)
    fake_openai.replies.extend(["这不是JSON", summary_json(solution="")])  # both malformed
    conversation = _active(tenant_a, cathy, carol)

    assert as_user(carol).post(f"/api/v1/conversations/{conversation.id}/end").status_code == 200

    summary = poll(lambda: _ready(conversation.id))
    assert len(fake_openai.requests) == 2
    assert (summary.model, summary.error) == ("local-extractive", "malformed summary answer")
    assert summary.main_issues == "你好，我想了解玻尿酸。玻尿酸能维持多久？"
    assert summary.solution == "玻尿酸一般维持6到12个月。价格根据品牌在3000到8000元。"
    assert summary.evaluation == "客户消息2条，客服/机器人回复1条；客户的最后一条消息尚未得到回复。"
    assert summary.keywords[:2] == ["玻尿酸", "热玛吉"]  # the domain dictionary keeps 玻尿酸 whole


def test_without_an_llm_or_with_a_failing_one_the_local_summary_is_stored_and_the_failure_recorded(
    tenant_a, carol, cathy, as_user, fake_openai, celery_worker
):
    # given the two-command start: the local agent (no LLM)
    offline = _active(tenant_a, cathy, carol)
    assert as_user(carol).post(f"/api/v1/conversations/{offline.id}/end").status_code == 200
    summary = poll(lambda: _ready(offline.id))
    assert summary.model == "local-extractive"
    assert summary.follow_up.startswith("跟进客户关心的：玻尿酸")
    assert AgentCall.objects.count() == 0
    # an admin's regenerate writes a new generation through a new job
    from anmei.ai.services.summaries import summary_regenerate

    assert summary_regenerate(summary=summary).status == "pending"
    again = poll(lambda: _ready(offline.id))
    assert (again.generation, again.model) == (2, "local-extractive")
    assert Job.objects.filter(kind="ai_summary", key__startswith=f"ai_summary:{offline.id}:").count() == 2

    # given an LLM that answers 500
    use_openai(tenant_a, fake_openai)
    fake_openai.mode = "error500"
    failing = _active(tenant_a, make_user(tenant_a, "cora"), carol)
    assert as_user(carol).post(f"/api/v1/conversations/{failing.id}/end").status_code == 200
    summary = poll(lambda: _ready(failing.id))
    assert summary.model == "local-extractive" and "500" in summary.error
    call = AgentCall.objects.get(purpose="summary")
    assert (call.success, call.conversation_id) == (False, failing.id)


def test_summary_is_for_staff_and_404_before_the_end(tenant_a, carol, cathy, as_user):
    conversation = _active(tenant_a, cathy, carol)
    assert_error(as_user(carol).get(f"/api/v1/conversations/{conversation.id}/summary"), 404, "not_found")
    assert_error(as_user(cathy).get(f"/api/v1/conversations/{conversation.id}/summary"), 403)


def test_an_ended_conversation_reads_pending_until_its_summary_job_runs(
    tenant_a, carol, cathy, as_user, django_capture_on_commit_callbacks
):
    # Given an active conversation, ended with no worker running (the hand-off job not taken yet)
    conversation = _active(tenant_a, cathy, carol)
    with django_capture_on_commit_callbacks(execute=False):
        response = as_user(carol).post(f"/api/v1/conversations/{conversation.id}/end")
    assert response.status_code == 200
    # When the consultant reads the summary
    body = as_user(carol).get(f"/api/v1/conversations/{conversation.id}/summary").json()
    # Then it is pending, from the end on, and its job names the summary task
    conversation.refresh_from_db()
    assert (body["status"], body["summary"], body["model"]) == ("pending", None, "")
    assert body["created_at"] == conversation.ended_at.isoformat().replace("+00:00", "Z")
    job = Job.objects.get(kind="ai_summary")
    assert (job.key, job.task, job.payload) == (
        f"ai_summary:{conversation.id}:1",
        "workers.ai.summarize",
        {"conversation_id": conversation.id, "generation": 1},
    )
    assert not ConversationSummary.objects.exists()


def test_dify_gets_the_built_context_as_its_query_and_a_prose_answer_falls_back(tenant_a, carol, cathy, fake_dify):
    # given a Dify app (it answers prose, not the JSON asked for)
    from anmei.ai.services.summaries import summary_generate
    from tests.fixtures_ai import configure_agent

    configure_agent(tenant_a, provider="dify", base_url=fake_dify.url, api_key="app-dify-secret")
    conversation = _active(tenant_a, cathy, carol)
    ConversationSummary.objects.create(tenant=tenant_a, conversation=conversation)

    # when the summary is written
    summary = summary_generate(conversation_id=conversation.id, generation=1)

    # then Dify got the whole conversation as one query, outside its own conversation thread, twice
    first, second = (r["body"] for r in fake_dify.requests)
    assert first["query"].startswith("[system]\n你是医美咨询机构的质检助手")
    assert "[user]\n<customer_message>好的，我再考虑一下热玛吉。</customer_message>" in first["query"]
    assert (first["conversation_id"], first["inputs"]["purpose"]) == ("", "summary")
    assert second["query"] == first["query"]
    assert (summary.status, summary.model, summary.error) == ("ready", "local-extractive", "malformed summary answer")


def test_a_conversation_where_the_customer_said_nothing_is_summarised_without_the_llm(
    tenant_a, carol, cathy, fake_openai
):
    from anmei.ai.services.summaries import summary_generate

    use_openai(tenant_a, fake_openai)
    conversation = Conversation.objects.create(tenant=tenant_a, customer=cathy, status="ended")
    message_create(conversation=conversation, sender_type="bot", content="欢迎来到安美智享！")
    ConversationSummary.objects.create(tenant=tenant_a, conversation=conversation)

    summary = summary_generate(conversation_id=conversation.id, generation=1)

    assert (summary.model, summary.main_issues) == ("local-extractive", "（客户未留言）")
    assert fake_openai.requests == [] and not AgentCall.objects.exists()
