"""Hot words (jieba + the shipped medical-aesthetics dictionary), hot questions and bot keyword hits.

Stock jieba cuts 玻尿酸 into 尿酸 (shared/NOTES.md): a private `jieba.Tokenizer` loads
`data/medical_aesthetics.dict`, so the process-wide default dictionary is left alone.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections import Counter
from datetime import date, datetime
from functools import lru_cache

from django.conf import settings

from anmei.common.lexicon import STOP_WORDS, USER_DICT
from anmei.conversations.models import Message
from anmei.stats.models import ReportingEvent, StatsTermDaily
from anmei.stats.services.upsert import scope_rows_replace

_QUESTION = re.compile(r"[?？]$|吗|呢|多少|多久|怎么|如何|什么|哪|几|是否|能不能|可不可以|有没有|为什么")
_WORD = re.compile(r"^[\u4e00-\u9fffA-Za-z][\u4e00-\u9fffA-Za-z0-9]*$")
_NOT_WORD = re.compile(r"[\W_]+", re.UNICODE)
_lock = threading.Lock()


@lru_cache(maxsize=1)
def _tokenizer():
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    with _lock:
        tokenizer = jieba.Tokenizer()
        tokenizer.initialize()
        tokenizer.load_userdict(str(USER_DICT))
    return tokenizer


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    return frozenset(w.strip() for w in STOP_WORDS.read_text(encoding="utf-8").splitlines() if w.strip())


def words_of(text: str) -> set[str]:
    """The distinct countable words of one message (stop words, single characters and numbers dropped)."""
    text = unicodedata.normalize("NFKC", text).lower()
    stops = stop_words()
    return {w for w in _tokenizer().lcut(text) if len(w) >= 2 and _WORD.match(w) and w not in stops}


def question_of(text: str) -> str | None:
    """The normalised question, or None when the message is not a question."""
    text = unicodedata.normalize("NFKC", text).strip().lower()
    if not text or not _QUESTION.search(text):
        return None
    normalised = _NOT_WORD.sub("", text)[:64]
    return normalised or None


def rollup_terms(*, tenant_id: int, day: date, start: datetime, end: datetime) -> None:
    """Recompute a local day's top words, questions and keyword hits; upsert the top N of each."""
    words: Counter[str] = Counter()
    questions: Counter[str] = Counter()
    for text in (
        Message.objects.filter(
            tenant_id=tenant_id,
            created_at__gte=start,
            created_at__lt=end,
            sender_type=Message.SenderType.CUSTOMER,
            type=Message.Type.TEXT,
            is_blocked=False,
        )
        .values_list("content", flat=True)
        .iterator(chunk_size=2000)
    ):
        if not text:
            continue
        words.update(words_of(text))
        question = question_of(text)
        if question:
            questions[question] += 1
    keywords: Counter[str] = Counter(
        keyword[:64]
        for keyword in ReportingEvent.objects.filter(
            tenant_id=tenant_id, kind=ReportingEvent.Kind.BOT_REPLY, occurred_at__gte=start, occurred_at__lt=end
        ).values_list("data__keyword", flat=True)
        if keyword
    )
    top = settings.STATS_TOP_N
    objects = [
        StatsTermDaily(tenant_id=tenant_id, day=day, kind=kind, term=term, count=count)
        for kind, counter in ((StatsTermDaily.Kind.WORD, words), (StatsTermDaily.Kind.QUESTION, questions))
        for term, count in sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:top]
    ] + [
        StatsTermDaily(tenant_id=tenant_id, day=day, kind=StatsTermDaily.Kind.KEYWORD, term=term, count=count)
        for term, count in keywords.items()
    ]
    scope_rows_replace(StatsTermDaily, objects, {"tenant_id": tenant_id, "day": day}, ["tenant", "day", "kind", "term"])
