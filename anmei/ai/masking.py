"""Personal data masking for every outbound LLM call (docs/privacy.md).

Before the gateway hands a request to any provider, PRC mobile numbers (with +86, spaces or
dashes), PRC ID-card numbers (18 digits, ISO 7064 check character, may end in X), e-mail
addresses and bank-card numbers (13-19 digits passing Luhn) are replaced by placeholders such as
`[PHONE_1]`. One `Masker` serves one call: the same value always gets the same placeholder, and
placeholders are numbered in order of first appearance in the conversation's context, so the
history of a conversation masks the same way call after call. What the LLM answers passes through
`unmask` before anyone sees it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"

_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
_ID_CARD = (
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])"
)
_PHONE = r"(?<![0-9])(?:(?:\+|00)86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?![0-9])"
_CARD = r"(?<![0-9])\d(?:[ -]?\d){12,18}(?![0-9])"

# One alternation, most specific first: an ID number is never read as a card, a phone never as one.
_PATTERN = re.compile(f"(?P<EMAIL>{_EMAIL})|(?P<ID>{_ID_CARD})|(?P<PHONE>{_PHONE})|(?P<CARD>{_CARD})")
_PLACEHOLDER = re.compile(r"\[(?:PHONE|ID|EMAIL|CARD)_\d+\]")


def id_card_valid(value: str) -> bool:
    """An 18-character PRC resident ID whose last character is its ISO 7064 MOD 11-2 check."""
    if len(value) != 18 or not value[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _canonical(kind: str, raw: str) -> str | None:
    """The value a match stands for (so `138 0013 8000` and `13800138000` share a placeholder)."""
    if kind == "EMAIL":
        return raw.lower()
    if kind == "ID":
        return raw.upper() if id_card_valid(raw) else None
    digits = re.sub(r"\D", "", raw)
    if kind == "PHONE":
        return digits[-11:]
    return digits if luhn_valid(digits) else None


class Masker:
    """Replaces personal data by stable placeholders and puts it back in the answer."""

    def __init__(self, *, tag: str = "") -> None:
        # `tag` namespaces the placeholders (the MCP server's are `[PHONE_T1]`), so one masker's
        # `unmask` never restores another's placeholder to the wrong value.
        self._tag = tag
        self._by_value: dict[tuple[str, str], str] = {}
        self._originals: dict[str, str] = {}
        self._counts: dict[str, int] = {}

    @property
    def count(self) -> int:
        return len(self._originals)

    def _placeholder(self, kind: str, value: str, raw: str) -> str:
        key = (kind, value)
        if key not in self._by_value:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            token = f"[{kind}_{self._tag}{self._counts[kind]}]"
            self._by_value[key] = token
            self._originals[token] = raw
        return self._by_value[key]

    def mask(self, text: str) -> str:
        if not text:
            return text

        def replace(match: re.Match) -> str:
            kind = match.lastgroup or ""
            raw = match.group(0)
            value = _canonical(kind, raw)
            if value is None:
                return raw
            return self._placeholder(kind, value, raw)

        return _PATTERN.sub(replace, text)

    def mask_messages(self, messages: list[dict] | None) -> list[dict] | None:
        if messages is None:
            return None
        return [{**m, "content": self.mask(m["content"])} if isinstance(m.get("content"), str) else m for m in messages]

    def mask_value(self, value: Any) -> Any:
        """Every string inside a JSON-like value masked (dict keys kept)."""
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {k: self.mask_value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask_value(v) for v in value]
        return value

    def unmask(self, text: str) -> str:
        if not text or not self._originals:
            return text
        return _PLACEHOLDER.sub(lambda m: self._originals.get(m.group(0), m.group(0)), text)

    def stream(self, on_delta: Callable[[str], None] | None) -> Callable[[str], None] | None:
        """An on_delta that un-masks fragments, holding back a placeholder split across fragments."""
        if on_delta is None:
            return None
        pending = [""]

        def delta(fragment: str) -> None:
            text = pending[0] + fragment
            cut = text.rfind("[")
            if cut != -1 and "]" not in text[cut:] and len(text) - cut <= 16:
                pending[0], text = text[cut:], text[:cut]
            else:
                pending[0] = ""
            if text:
                on_delta(self.unmask(text))

        return delta
