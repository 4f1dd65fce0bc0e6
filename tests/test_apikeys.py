"""Tenant API keys (API.md): shown once, hashed, scoped, tenant-bound, revocable, counted, rate-limited."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from anmei.apikeys.models import ApiKey, ApiKeyAudit
from anmei.common.crypto import hash_token
from anmei.conversations.models import Conversation
from tests.helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_hashing")]

KEYS = "/api/v1/api-keys"


def _create(client, scopes, name="crm"):
    response = client.post(KEYS, {"name": name, "scopes": scopes}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def _with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_admin_creates_a_key_shown_once_and_stored_as_a_hash(as_user, alice):
    admin = as_user(alice)
    created = _create(admin, ["conversations:read", "stats:read"])
    assert set(created) == {"id", "name", "prefix", "key", "scopes"}
    assert created["key"].startswith("ak_") and created["key"][:12] == created["prefix"]
    assert created["scopes"] == ["conversations:read", "stats:read"]
    stored = ApiKey.objects.get(pk=created["id"])
    assert (stored.key_hash, stored.tenant_id, stored.created_by_id) == (
        hash_token(created["key"]),
        alice.tenant_id,
        alice.id,
    )
    listed = admin.get(KEYS).json()
    assert listed == [
        {
            "id": created["id"],
            "name": "crm",
            "prefix": created["prefix"],
            "scopes": ["conversations:read", "stats:read"],
            "created_at": listed[0]["created_at"],
            "last_used_at": None,
            "usage_count": 0,
            "revoked_at": None,
        }
    ]
    assert ApiKeyAudit.objects.filter(api_key_id=created["id"], action="created", actor=alice).count() == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x", "scopes": ["admin:all"]}, "scopes"),
        ({"scopes": ["stats:read"]}, "name"),
    ],
)
def test_bad_key_requests_are_400_and_create_nothing(as_user, alice, body, field):
    error = assert_error(as_user(alice).post(KEYS, body, format="json"), 400, "validation_error")
    assert field in error["details"]["fields"]
    assert ApiKey.objects.count() == 0


def test_only_tenant_admins_manage_keys(as_user, carol, cathy, olga):
    for user in (carol, cathy, olga):
        assert_error(as_user(user).post(KEYS, {"name": "x", "scopes": ["stats:read"]}, format="json"), 403)


def test_a_key_reaches_only_the_endpoints_its_scopes_cover(as_user, alice, tenant_a, tenant_b, cathy, bill):
    mine = Conversation.objects.create(tenant=tenant_a, customer=cathy, channel="web")
    Conversation.objects.create(tenant=tenant_b, customer=bill, channel="web")
    key = _with_key(_create(as_user(alice), ["conversations:read"])["key"])
    # then it lists its own tenant's conversations only
    response = key.get("/api/v1/conversations")
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [mine.id]
    assert key.get(f"/api/v1/conversations/{mine.id}/messages").status_code == 200
    # and nothing outside its scopes, admin rights of its creator notwithstanding
    assert_error(key.get("/api/v1/blacklist"), 403)
    assert_error(
        key.post(f"/api/v1/conversations/{mine.id}/messages", {"type": "text", "content": "hi"}, format="json"), 403
    )
    assert_error(key.get(KEYS), 403)
    assert_error(key.get("/api/v1/mcp-config/groups"), 403)
    assert_error(key.post("/api/v1/auth/ws-ticket"), 403)


def test_write_scopes_work_and_are_tenant_bound(as_user, alice, tenant_a):
    key = _with_key(_create(as_user(alice), ["blacklist:read", "blacklist:write", "stats:read"])["key"])
    created = key.post("/api/v1/blacklist", {"platform": "wecom", "user_id": "spammer"}, format="json")
    assert created.status_code == 201
    assert [e["user_id"] for e in key.get("/api/v1/blacklist").json()["results"]] == ["spammer"]
    assert key.get("/api/v1/admin/registration-automation/dashboard").status_code == 200


def test_revoked_keys_and_keys_of_a_demoted_admin_stop_working(as_user, alice, bob):
    admin = as_user(alice)
    created = _create(admin, ["stats:read"])
    key = _with_key(created["key"])
    assert key.get("/api/v1/mcp-config/metrics").status_code == 200
    # another tenant's admin cannot revoke it
    assert_error(as_user(bob).delete(f"{KEYS}/{created['id']}"), 404)
    assert key.get("/api/v1/mcp-config/metrics").status_code == 200
    assert admin.delete(f"{KEYS}/{created['id']}").status_code == 204
    assert admin.delete(f"{KEYS}/{created['id']}").status_code == 204  # idempotent
    assert_error(key.get("/api/v1/mcp-config/metrics"), 401, "invalid_token")
    assert ApiKeyAudit.objects.filter(api_key_id=created["id"], action="revoked").count() == 1

    second = _with_key(_create(admin, ["stats:read"])["key"])
    alice.role = "consultant"
    alice.save()
    assert_error(second.get("/api/v1/mcp-config/metrics"), 401, "invalid_token")


def test_usage_is_counted_and_the_per_key_limit_applies(as_user, alice):
    created = _create(as_user(alice), ["stats:read"])
    ApiKey.objects.filter(pk=created["id"]).update(rate_limit_per_minute=2)
    key = _with_key(created["key"])
    statuses = [key.get("/api/v1/mcp-config/metrics").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    stored = ApiKey.objects.get(pk=created["id"])
    assert stored.usage_count == 2 and stored.last_used_at is not None


def test_django_admin_adds_a_key_shown_once_and_revokes_it(client, alice, bob):
    client.force_login(alice)
    response = client.post("/admin/apikeys/apikey/add/", {"name": "erp", "scopes": ["blacklist:read"]}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"] if "copy it now" in str(m)]
    assert len(shown) == 1
    key = shown[0].rsplit(" ", 1)[1]
    stored = ApiKey.objects.get(name="erp")
    assert (stored.key_hash, stored.tenant_id, stored.scopes) == (hash_token(key), alice.tenant_id, ["blacklist:read"])
    client.post("/admin/apikeys/apikey/", {"action": "revoke", "_selected_action": [stored.pk]})
    stored.refresh_from_db()
    assert stored.revoked_at is not None
    client.force_login(bob)
    assert b"erp" not in client.get("/admin/apikeys/apikey/").content
