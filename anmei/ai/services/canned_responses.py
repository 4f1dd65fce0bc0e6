"""Writes for canned responses: the tenant's shortcode replies (also the offline reply suggestions)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from anmei.ai.models import CannedResponse
from anmei.common.errors import ApplicationError


def canned_response_create(*, tenant_id: int, shortcode: str, text: str, keywords: list[str]) -> CannedResponse:
    try:
        with transaction.atomic():
            return CannedResponse.objects.create(
                tenant_id=tenant_id, shortcode=shortcode, text=text, keywords=_clean_keywords(keywords)
            )
    except IntegrityError as exc:
        raise _shortcode_taken(shortcode) from exc


def canned_response_update(*, response: CannedResponse, **fields) -> CannedResponse:
    if "keywords" in fields:
        fields["keywords"] = _clean_keywords(fields["keywords"])
    for name, value in fields.items():
        setattr(response, name, value)
    try:
        with transaction.atomic():
            response.save()
    except IntegrityError as exc:
        raise _shortcode_taken(response.shortcode) from exc
    return response


def canned_response_delete(*, response: CannedResponse) -> None:
    response.delete()


def _clean_keywords(keywords: list[str]) -> list[str]:
    seen: list[str] = []
    for word in keywords:
        word = word.strip()
        if word and word not in seen:
            seen.append(word)
    return seen


def _shortcode_taken(shortcode: str) -> ApplicationError:
    return ApplicationError(
        "shortcode_taken",
        f"a canned response /{shortcode} exists",
        status_code=409,
        details={"field": "shortcode"},
    )
