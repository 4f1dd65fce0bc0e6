"""The agent fails soft: no tokenizer, a broken context or a model that ignores JSON mode never
turns into retries, errors or an empty answer for the consultant."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from anmei.ai import tokens
from anmei.ai.gateway import reply_generate
from anmei.ai.models import AgentCall
from anmei.ai.services.suggestions import _parse
from anmei.conversations.models import Conversation
from tests.fixtures_ai import use_openai

ROOT = Path(__file__).resolve().parent.parent


def test_token_counts_are_estimated_where_the_rank_file_is_not_installed(tmp_path):
    # given an interpreter whose `whisper` package has no multilingual.tiktoken (a slim install)
    (tmp_path / "whisper").mkdir()
    (tmp_path / "whisper" / "__init__.py").write_text("")
    probe = textwrap.dedent(
        """
        from anmei.ai import tokens
        assert tokens.encoding() is None
        print(tokens.count_text("你好世界"), tokens.count_text("hello world!"), tokens.count_text(""))
        print(repr(tokens.truncate_text("玻尿酸能维持多久", 3)), repr(tokens.truncate_text("短", 5)))
        print(tokens.count_messages([{"role": "user", "content": "价格"}]))
        """
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    # when tokens are counted and cut there
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True)
    # then the documented estimate answers (one per CJK character, one per four others) instead of raising
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["6 3 0", "'玻尿' '短'", "9"]


def test_the_estimate_stays_close_to_the_bpe():
    # given consultation texts (Chinese and mixed) counted by the offline BPE installed here
    texts = [
        "玻尿酸能维持多久？",
        "双眼皮手术恢复期大概多长时间",
        "价格以面诊为准，欢迎预约免费面诊。",
        "hello, how long does it last?",
        "我想问一下 botox 的价格 2000元吗",
    ]
    # then the fallback estimate is close enough for a context budget (over rather than under)
    for text in texts:
        assert 0.7 * tokens.count_text(text) <= tokens.estimate_text(text) <= 1.4 * tokens.count_text(text), text


def test_a_prose_answer_becomes_one_suggestion():
    # given a model that answered in plain words although JSON was asked for
    answer = "  您好，玻尿酸一般维持6到12个月，建议先预约面诊。 "
    # then the consultant gets it as one personalised draft; broken JSON still gives none
    assert _parse(answer) == [{"kind": "personalised", "text": "您好，玻尿酸一般维持6到12个月，建议先预约面诊。"}]
    assert _parse('{"suggestions": [{"kind": "comfort", "text": "别担') == []
    assert _parse("   ") == []


@pytest.mark.django_db(transaction=True)
def test_a_context_that_cannot_be_built_falls_back_at_once(tenant_a, carol, cathy, fake_openai, monkeypatch, tmp_path):
    # given an agent and a broken tokenizer install (a corrupt rank file: building the context raises)
    use_openai(tenant_a, fake_openai)
    conversation = Conversation.objects.create(tenant=tenant_a, customer=cathy, consultant=carol, status="active")
    corrupt = tmp_path / "multilingual.tiktoken"
    corrupt.write_text("not base64 at all\n")
    monkeypatch.setattr(tokens, "_rank_file", lambda: str(corrupt))
    tokens.encoding.cache_clear()
    try:
        # when the agent is asked to answer the customer
        reply = reply_generate(
            tenant_id=tenant_a.id, customer_id=cathy.id, conversation_id=conversation.id, text="价格多少？"
        )
    finally:
        tokens.encoding.cache_clear()
    # then the caller gets no reply at once (its template/away path answers), and no LLM was called
    assert reply is None
    assert fake_openai.requests == []
    assert AgentCall.objects.count() == 0
