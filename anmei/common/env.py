"""Reading settings from the environment strictly: a value that is not what it claims is an error.

django-environ reads any unknown spelling of a boolean as False (`DEBUG=ture` switched DEBUG
off without a word); here it stops the process at start-up instead, naming the variable.
"""

from __future__ import annotations

from typing import Any

import environ

TRUE_STRINGS = frozenset({"true", "1", "yes", "on", "y", "t"})
FALSE_STRINGS = frozenset({"false", "0", "no", "off", "n", "f"})


class StrictEnv(environ.Env):
    """`environ.Env` whose booleans accept only true/false spellings (case-insensitive)."""

    def get_value(self, var: str, cast: Any = None, default: Any = environ.Env.NOTSET, parse_default: bool = False):
        if cast is bool:
            raw = self.ENVIRON.get(var)
            if raw is not None and raw.strip().lower() not in TRUE_STRINGS | FALSE_STRINGS:
                raise environ.ImproperlyConfigured(
                    f"{var}={raw!r} is not a boolean: use one of true/false, 1/0, yes/no, on/off"
                )
        return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
