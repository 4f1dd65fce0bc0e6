"""Offline text intelligence with jieba: keywords, key sentences, the local extractive summary.

Text is cut with the clinic's dictionary and stop words (anmei.common.lexicon, shared with the
statistics' hot words). Used when no LLM is configured (the two-command start), when the monthly
quota is spent, and when a provider fails.
"""

from __future__ import annotations

import functools
import re
import threading

from anmei.common.lexicon import STOP_WORDS, USER_DICT

LOCAL_MODEL = "local-extractive"

_SENTENCE_END = re.compile(r"(?<=[。！？!?；;\n])")
_lock = threading.Lock()


@functools.cache
def _analyzer():
    """jieba's TF-IDF keyword extractor with our dictionary and stop words (loaded once per process)."""
    import jieba
    import jieba.analyse

    with _lock:
        jieba.setLogLevel(60)
        jieba.load_userdict(str(USER_DICT))
        tfidf = jieba.analyse.TFIDF()
        tfidf.set_stop_words(str(STOP_WORDS))
    return tfidf


def keywords(text: str, top: int = 5) -> list[str]:
    """The most characteristic words of a text (single characters and numbers left out)."""
    if not text.strip():
        return []
    words = _analyzer().extract_tags(text, topK=top * 3, withWeight=False)
    return [w for w in words if len(w) > 1 and not w.isdigit()][:top]


def _weighted(text: str) -> dict[str, float]:
    return {w: s for w, s in _analyzer().extract_tags(text, topK=50, withWeight=True) if len(w) > 1}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def key_sentences(lines: list[str], limit: int = 2) -> list[str]:
    """The `limit` sentences carrying the most keyword weight, in their original order."""
    return key_lines([s for line in lines for s in sentences(line)], limit)


def key_lines(candidates: list[str], limit: int = 2) -> list[str]:
    """The `limit` lines carrying the most keyword weight, in their original order, each kept whole."""
    if len(candidates) <= limit:
        return candidates
    weights = _weighted("\n".join(candidates))
    scored = []
    for index, sentence in enumerate(candidates):
        score = sum(weight for word, weight in weights.items() if word in sentence)
        scored.append((score, -index, sentence))
    chosen = sorted(scored, reverse=True)[:limit]
    order = {sentence: -neg_index for _score, neg_index, sentence in chosen}
    return sorted(order, key=order.get)


def summarize_turns(turns: list[tuple[str, str]]) -> dict:
    """The local summary of a conversation: `turns` are (speaker, text).

    Speakers: `customer`, `consultant`, `bot` (auto-replies) and `welcome` (the greeting, which
    answers nothing). main_issues: the customer's key sentences; solution: the consultant's advice,
    or the bot's replies where no consultant wrote (never the welcome); evaluation: what the exchange
    shows (counts, whether the customer's last word was answered); follow_up: the topics to come
    back to.
    """
    customer = [text for speaker, text in turns if speaker == "customer" and text.strip()]
    staff = [text for speaker, text in turns if speaker != "customer" and text.strip()]
    advice = [text for speaker, text in turns if speaker == "consultant" and text.strip()]
    advice = advice or [text for speaker, text in turns if speaker == "bot" and text.strip()]
    words = keywords("\n".join(customer), top=5)
    answered = bool(turns) and turns[-1][0] != "customer"
    evaluation = f"客户消息{len(customer)}条，客服/机器人回复{len(staff)}条；" + (
        "客户的最后一个问题已得到回复。" if answered else "客户的最后一条消息尚未得到回复。"
    )
    return {
        "main_issues": "".join(key_sentences(customer, 2)) or "（客户未留言）",
        "solution": "".join(key_sentences(advice, 2)) or "（顾问未给出建议）",
        "evaluation": evaluation,
        "follow_up": ("跟进客户关心的：" + "、".join(words)) if words else "无需跟进",
        "keywords": words,
    }
