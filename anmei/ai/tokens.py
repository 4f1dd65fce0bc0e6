"""Token counting with a real BPE tokenizer that works offline.

`tiktoken` downloads its encodings at first use, which this platform cannot rely on (air-gapped
clinics, CI). openai-whisper ships the BPE rank file of its multilingual tokenizer (a GPT-2 style
byte-level BPE extended with CJK merges) inside the package; we build the same `tiktoken.Encoding`
whisper builds, without importing whisper (which would import torch). Counts are an estimate for
models with their own tokenizer; where a provider reports usage, its figures are what we meter.

Where the rank file is missing (a slim install without openai-whisper), counting must not fail:
a context that cannot be counted would send welcomes into retries and suggestions into errors.
The fallback is a documented estimate, `estimate_text`: 1.3 tokens per CJK character
(what the BPE averages on Chinese consultation text) and one per four other characters, rounded up
— between 30 % under and 40 % over the BPE on the texts in tests/test_ai_fail_soft.py.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import logging
import math
import os
import re

import tiktoken

logger = logging.getLogger("anmei.ai")

ENCODING_NAME = "whisper-multilingual"
# whisper/tokenizer.py: the pattern and vocabulary size of its multilingual encoding.
_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Per-message framing of the chat format (role and separators), as OpenAI's cookbook counts it.
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3


# CJK ideographs, kana, hangul and full-width forms: about 1.3 BPE tokens each.
_WIDE = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


def _rank_file() -> str | None:
    spec = importlib.util.find_spec("whisper")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(list(spec.submodule_search_locations)[0], "assets", "multilingual.tiktoken")
    return path if os.path.exists(path) else None


@functools.cache
def encoding() -> tiktoken.Encoding | None:
    """The offline BPE, or None where its rank file is not installed (counts are then estimated)."""
    path = _rank_file()
    if path is None:
        logger.warning("token counts are estimated: openai-whisper's multilingual.tiktoken is not installed")
        return None
    with open(path, "rb") as handle:
        pairs = (line.split() for line in handle if line.strip())
        ranks = {base64.b64decode(token): int(rank) for token, rank in pairs}
    return tiktoken.Encoding(
        name=ENCODING_NAME,
        pat_str=_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": len(ranks)},
    )


def estimate_text(text: str) -> int:
    """Estimated tokens of a text without a tokenizer (see the module docstring)."""
    wide = len(_WIDE.findall(text))
    return math.ceil(wide * 1.3 + (len(text) - wide) / 4)


def count_text(text: str) -> int:
    """Tokens of a plain text (special-token spellings in user text are counted as ordinary text)."""
    if not text:
        return 0
    enc = encoding()
    if enc is None:
        return estimate_text(text)
    return len(enc.encode_ordinary(text))


def count_message(message: dict) -> int:
    """Tokens one chat message costs: its content plus the per-message framing."""
    return TOKENS_PER_MESSAGE + count_text(message.get("content") or "")


def count_messages(messages: list[dict]) -> int:
    """Prompt tokens of a whole chat request."""
    return sum(count_message(m) for m in messages) + TOKENS_REPLY_PRIMING


def truncate_text(text: str, max_tokens: int) -> str:
    """The longest prefix of `text` within `max_tokens` (cut on a token boundary, never mid-character)."""
    if max_tokens <= 0:
        return ""
    enc = encoding()
    if enc is None:
        if estimate_text(text) <= max_tokens:
            return text
        low, high = 0, len(text)  # the longest prefix whose estimate fits (the estimate is monotone)
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if estimate_text(text[:mid]) <= max_tokens else (low, mid - 1)
        return text[:low]
    tokens = enc.encode_ordinary(text)
    if len(tokens) <= max_tokens:
        return text
    cut = tokens[:max_tokens]
    decoded = enc.decode_bytes(cut)
    return decoded.decode("utf-8", errors="ignore")
