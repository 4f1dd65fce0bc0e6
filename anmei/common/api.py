from __future__ import annotations

from typing import Any

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from anmei.common import outbound


def validated_input(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
    """Validate a request body or query dict; anything but an object is a 400, never a 500."""
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["expected a JSON object"]})
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


MAX_DB_ID = 2**63 - 1  # BIGINT; larger numbers overflow SQLite and PostgreSQL parameters


def IdField(**kwargs: Any) -> serializers.IntegerField:  # noqa: N802 - reads like a field class
    """A primary-key reference: a positive integer that fits the database's BIGINT."""
    return serializers.IntegerField(min_value=1, max_value=MAX_DB_ID, **kwargs)


class IdConverter:
    """URL converter for ids: 1 to 18 digits, so an absurd id is a 404 before it reaches the database."""

    regex = "[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(value)


class TenantURLField(serializers.URLField):
    """A URL a tenant configures for us to call: `outbound.config_error` decides (SSRF, shape).

    `base=True` (an API or callback root we append paths to) also refuses `?` and `#`.
    """

    def __init__(self, *, base: bool = True, **kwargs: Any) -> None:
        self.base = base
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        error = outbound.config_error(value, base=self.base)
        if error:
            raise ValidationError(error)
        return value
