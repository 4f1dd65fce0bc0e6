"""Issue 8 §12: the push gateway secret is encrypted at rest and write-only in admin; MCP logs redact."""

from __future__ import annotations

import pytest

from anmei.automation.models import AutomationSettings
from anmei.automation.services import automation_settings_update
from anmei.common.crypto import decrypt

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_hashing")]


def test_push_gateway_secret_is_stored_encrypted(tenant_a):
    automation_settings_update(tenant_id=tenant_a.id, push_gateway_secret="s3cret-signing-key")
    stored = AutomationSettings.objects.filter(tenant=tenant_a).values_list("push_gateway_secret_encrypted", flat=True)
    [ciphertext] = list(stored)
    assert "s3cret" not in ciphertext and decrypt(ciphertext) == "s3cret-signing-key"
    assert AutomationSettings.objects.get(tenant=tenant_a).push_gateway_secret == "s3cret-signing-key"


def test_admin_never_shows_the_secret_and_keeps_it_when_left_empty(client, alice, tenant_a):
    config = automation_settings_update(tenant_id=tenant_a.id, push_gateway_secret="s3cret-signing-key")
    client.force_login(alice)
    url = f"/admin/automation/automationsettings/{config.pk}/change/"
    page = client.get(url)
    assert page.status_code == 200 and b"s3cret" not in page.content
    form = page.context["adminform"].form
    body = {name: form.initial.get(name, "") for name in form.fields if name not in ("push_gateway_secret",)}
    body.update(
        retry_countdowns="[5, 15, 60]", notification_backend="webhook", push_gateway_url="https://push.example/x"
    )
    body = {k: v for k, v in body.items() if v is not None and v is not False}
    assert client.post(url, body).status_code == 302
    assert AutomationSettings.objects.get(pk=config.pk).push_gateway_secret == "s3cret-signing-key"


def test_mcp_call_log_keeps_the_shape_not_the_text(settings):
    from mcp_server.server import _loggable

    profile = {"user_id": 7, "nickname": "Cathy", "phone": "13800138000", "tags": ["vip"], "is_new_user": True}
    assert _loggable(profile, redact=True) == {
        "user_id": 7,
        "nickname": "[redacted: 5 chars]",
        "phone": "[redacted: 11 chars]",
        "tags": ["[redacted: 3 chars]"],
        "is_new_user": True,
    }
    settings.MCP_LOG_RESPONSES = "full"
    assert _loggable(profile, redact=True) == profile
