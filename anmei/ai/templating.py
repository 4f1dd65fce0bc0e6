"""Tenant-written message templates: `{name}` placeholders only, and the generated-message cap.

`str.format` is not used for tenant text: a format spec (`{nickname:*>5000000}`) made a
multi-megabyte welcome per registration, and attribute or index access (`{x.__class__}`, `{x[0]}`)
reaches into Python objects. Here a placeholder is `{identifier}` and nothing else; `{{`/`}}` are
literal braces. Templates are checked when saved; at render time an unknown name stays literal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from django.core.exceptions import ValidationError

# API.md "Hardening promises": a rendered welcome or generated message is at most 2,000 characters.
MESSAGE_MAX_CHARS = 2000

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]{0,63})\}")
_BRACED = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")


def template_errors(template: str) -> list[str]:
    """The placeholders of `template` that are not plain `{name}` (empty when it is acceptable)."""
    bad = []
    for match in _BRACED.finditer(template):
        if match.group(1) is not None and not _PLACEHOLDER.fullmatch(match.group(0)):
            bad.append(match.group(0)[:40])
    return bad


def template_validator(template: str) -> None:
    """A form/serializer validator: refuse format specs, conversions, attribute and index access."""
    bad = template_errors(template)
    if bad:
        raise ValidationError(
            "placeholders are {name} only (no format specs, conversions, attributes or indexes): " + ", ".join(bad[:5])
        )


def template_render(template: str, values: Mapping[str, object]) -> str:
    """Replace each `{name}` with its value (unknown names stay as written), capped at MESSAGE_MAX_CHARS."""

    def substitute(match: re.Match) -> str:
        token, name = match.group(0), match.group(1)
        if name is None:
            return token[0]  # `{{` -> `{`, `}}` -> `}`
        return str(values[name]) if name in values else token

    return message_cap(_PLACEHOLDER.sub(substitute, template))


def message_cap(text: str) -> str:
    """A generated message cut to MESSAGE_MAX_CHARS characters."""
    return text[:MESSAGE_MAX_CHARS]
