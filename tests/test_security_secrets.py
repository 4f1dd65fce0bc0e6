"""The push gateway secret is encrypted at rest and write-only in admin; MCP logs redact."""

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


@pytest.mark.parametrize(
    ("form_path", "url_field", "secret_field", "data"),
    [
        (
            "anmei.automation.admin.AutomationSettingsForm",
            "push_gateway_url",
            "push_gateway_secret",
            {"retry_countdowns": "[5, 15, 60]", "max_retries": 3, "notification_backend": "webhook"},
        ),
        (
            "anmei.ai.admin.AgentConfigForm",
            "base_url",
            "api_key",
            {"provider": "openai", "model": "m", "timeout_seconds": 8, "breaker_threshold": 5,
             "breaker_cooldown_seconds": 30},
        ),
    ],
)  # fmt: skip
def test_tenant_settings_forms_refuse_private_urls_and_clear_a_secret_only_when_asked(
    tenant_a, form_path, url_field, secret_field, data
):
    from django.utils.module_loading import import_string

    form_class = import_string(form_path)
    model = form_class._meta.model
    instance = model.objects.create(tenant=tenant_a, **{secret_field: "s3cret"})
    base = {"tenant": tenant_a.id, "welcome_template": "您好 {nickname}", **data}
    # Given the admin form of a tenant's integration settings holding a stored secret
    # When it is saved with a private URL, then with a public one and the secret left empty,
    # then with the clear box ticked
    private = form_class({**base, url_field: "http://169.254.169.254/latest"}, instance=instance)
    kept = form_class({**base, url_field: "https://hooks.example/x"}, instance=instance)
    assert private.is_valid() is False and url_field in private.errors
    assert kept.is_valid(), kept.errors
    kept.save()
    after_keep = model.objects.get(pk=instance.pk)
    kept_secret = getattr(after_keep, secret_field)
    cleared = form_class(
        {**base, url_field: "https://hooks.example/x", f"clear_{secret_field}": "on"}, instance=after_keep
    )
    assert cleared.is_valid(), cleared.errors
    cleared.save()
    # Then the private URL is refused on its field, an empty field keeps the secret, the box clears it
    assert kept_secret == "s3cret"
    assert getattr(model.objects.get(pk=instance.pk), secret_field) == ""
