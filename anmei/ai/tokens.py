"""Token counting with a real BPE tokenizer that works offline.

`tiktoken` downloads its encodings at first use, which this platform cannot rely on (air-gapped
clinics, CI). openai-whisper ships the BPE rank file of its multilingual tokenizer (a GPT-2 style
byte-level BPE extended with CJK merges) inside the package; we build the same `tiktoken.Encoding`
whisper builds, without importing whisper (which would import torch). Counts are an estimate for
models with their own tokenizer; where a provider reports usage, its figures are what we meter.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import os

import tiktoken

ENCODING_NAME = "whisper-multilingual"
# whisper/tokenizer.py: the pattern and vocabulary size of its multilingual encoding.
_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Per-message framing of the chat format (role and separators), as OpenAI's cookbook counts it.
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3


def _rank_file() -> str:
    spec = importlib.util.find_spec("whisper")  # locates the package without executing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("openai-whisper is not installed: its multilingual.tiktoken is the offline tokenizer")
    return os.path.join(list(spec.submodule_search_locations)[0], "assets", "multilingual.tiktoken")


@functools.cache
def encoding() -> tiktoken.Encoding:
    with open(_rank_file(), "rb") as handle:
        pairs = (line.split() for line in handle if line.strip())
        ranks = {base64.b64decode(token): int(rank) for token, rank in pairs}
    return tiktoken.Encoding(
        name=ENCODING_NAME,
        pat_str=_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": len(ranks)},
    )


def count_text(text: str) -> int:
    """Tokens of a plain text (special-token spellings in user text are counted as ordinary text)."""
    if not text:
        return 0
    return len(encoding().encode_ordinary(text))


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
    tokens = encoding().encode_ordinary(text)
    if len(tokens) <= max_tokens:
        return text
    cut = tokens[:max_tokens]
    decoded = encoding().decode_bytes(cut)
    return decoded.decode("utf-8", errors="ignore")
