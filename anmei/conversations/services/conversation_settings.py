"""Writes of the tenant's conversation settings (auto-reply, away message, inactivity timeout)."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from anmei.conversations.models import ConversationSettings


def conversation_settings_get_or_create(*, tenant_id: int) -> ConversationSettings:
    """Read the tenant's conversation settings, creating the defaults row on first use.

    Fresh from the database on every call, so an admin edit applies to the next message. Two first
    uses at once both end with the one row (the tenant is unique; the loser reads the winner's).
    """
    found = ConversationSettings.objects.filter(tenant_id=tenant_id).first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            return ConversationSettings.objects.create(tenant_id=tenant_id)
    except IntegrityError:
        return ConversationSettings.objects.get(tenant_id=tenant_id)
