"""Blacklist REST: add, duplicate, remove, batch, search and filters, versions, tenant isolation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from anmei.blacklist.models import BlacklistChange, BlacklistEntry
from anmei.blacklist.selectors import blacklist_version
from tests.helpers import assert_error

URL = "/api/v1/blacklist"

pytestmark = pytest.mark.usefixtures("fast_hashing")


def test_admin_adds_an_entry_and_the_version_goes_up(tenant_a, alice, as_user):
    expires = (timezone.now() + timedelta(days=7)).isoformat()
    response = as_user(alice).post(
        URL, {"platform": "wecom", "user_id": "wx-1", "reason": "骚扰", "expires_at": expires}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["platform"], body["user_id"], body["reason"], body["created_by"], body["version"]) == (
        "wecom",
        "wx-1",
        "骚扰",
        alice.id,
        1,
    )
    change = BlacklistChange.objects.get(tenant=tenant_a)
    assert (change.version, change.action) == (1, "add")
    assert change.data["entries"][0]["user_id"] == "wx-1"


def test_adding_the_same_user_twice_is_409_and_changes_nothing(tenant_a, alice, as_user):
    client = as_user(alice)
    first = client.post(URL, {"platform": "wecom", "user_id": "wx-1"}, format="json").json()
    error = assert_error(
        client.post(URL, {"platform": "wecom", "user_id": "wx-1"}, format="json"), 409, "already_blacklisted"
    )
    assert error["details"]["id"] == first["id"]
    assert BlacklistEntry.objects.count() == 1 and blacklist_version(tenant_id=tenant_a.id) == 1
    # same id on another platform is another person
    assert client.post(URL, {"platform": "qq", "user_id": "wx-1"}, format="json").status_code == 201


@pytest.mark.parametrize(
    "payload",
    [
        {"platform": "myspace", "user_id": "x"},
        {"platform": "wecom"},
        {"platform": "wecom", "user_id": ""},
        {"platform": "wecom", "user_id": "x", "expires_at": "yesterday"},
        {"platform": "wecom", "user_id": "x", "expires_at": "2001-01-01T00:00:00Z"},
        ["wecom", "x"],
    ],
)
def test_bad_entry_is_400_and_nothing_written(tenant_a, alice, as_user, payload):
    assert_error(as_user(alice).post(URL, payload, format="json"), 400)
    assert BlacklistEntry.objects.count() == 0 and blacklist_version(tenant_id=tenant_a.id) == 0


def test_only_admins_manage_the_blacklist(carol, cathy, as_user, anon):
    for client in (as_user(carol), as_user(cathy)):
        assert_error(client.post(URL, {"platform": "wecom", "user_id": "x"}, format="json"), 403)
        assert_error(client.get(URL), 403)
    assert_error(anon.get(URL), 401)
    assert BlacklistEntry.objects.count() == 0


def test_delete_removes_and_bumps_the_version(tenant_a, alice, as_user):
    client = as_user(alice)
    entry_id = client.post(URL, {"platform": "wecom", "user_id": "wx-1"}, format="json").json()["id"]
    assert client.delete(f"{URL}/{entry_id}").status_code == 204
    assert BlacklistEntry.objects.count() == 0
    assert blacklist_version(tenant_id=tenant_a.id) == 2
    assert BlacklistChange.objects.get(version=2).data == {"entries": [{"platform": "wecom", "user_id": "wx-1"}]}
    assert_error(client.delete(f"{URL}/{entry_id}"), 404)


def test_other_tenant_cannot_see_or_delete_entries(tenant_a, alice, bob, as_user):
    entry_id = as_user(alice).post(URL, {"platform": "wecom", "user_id": "wx-1"}, format="json").json()["id"]
    assert as_user(bob).get(URL).json()["results"] == []
    assert_error(as_user(bob).delete(f"{URL}/{entry_id}"), 404)
    assert BlacklistEntry.objects.filter(pk=entry_id).exists()
    assert blacklist_version(tenant_id=tenant_a.id) == 1


def test_batch_add_is_one_version_and_updates_existing(tenant_a, alice, as_user):
    client = as_user(alice)
    client.post(URL, {"platform": "wecom", "user_id": "a", "reason": "old"}, format="json")
    entries = [{"platform": "wecom", "user_id": "a", "reason": "new"}] + [
        {"platform": "qq", "user_id": f"q{i}"} for i in range(5)
    ]
    response = client.post(f"{URL}/batch", {"action": "add", "entries": entries}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json() == {"action": "add", "created": 5, "updated": 1, "version": 2}
    assert BlacklistEntry.objects.get(platform_user_id="a").reason == "new"
    assert BlacklistChange.objects.filter(tenant=tenant_a).count() == 2
    assert len(BlacklistChange.objects.get(version=2).data["entries"]) == 6


def test_batch_remove_ignores_unknown_users_and_noop_batches_do_not_bump(tenant_a, alice, as_user):
    client = as_user(alice)
    client.post(
        f"{URL}/batch",
        {"action": "add", "entries": [{"platform": "qq", "user_id": "a"}, {"platform": "qq", "user_id": "b"}]},
        format="json",
    )
    response = client.post(
        f"{URL}/batch",
        {"action": "remove", "entries": [{"platform": "qq", "user_id": "a"}, {"platform": "qq", "user_id": "zzz"}]},
        format="json",
    )
    assert response.json() == {"action": "remove", "removed": 1, "version": 2}
    again = client.post(
        f"{URL}/batch", {"action": "remove", "entries": [{"platform": "qq", "user_id": "a"}]}, format="json"
    )
    assert again.json() == {"action": "remove", "removed": 0, "version": 2}
    assert list(BlacklistEntry.objects.values_list("platform_user_id", flat=True)) == ["b"]


@pytest.mark.parametrize(
    "payload",
    [
        {"action": "purge", "entries": [{"platform": "qq", "user_id": "a"}]},
        {"action": "add", "entries": []},
        {"action": "add", "entries": [{"platform": "qq", "user_id": "a"}, {"platform": "qq", "user_id": "a"}]},
        {"action": "add", "entries": [{"platform": "qq", "user_id": "a"}, {"platform": "bad", "user_id": "b"}]},
        {"action": "add", "entries": "qq:a"},
    ],
)
def test_bad_batch_is_400_and_nothing_written(tenant_a, alice, as_user, payload):
    assert_error(as_user(alice).post(f"{URL}/batch", payload, format="json"), 400)
    assert BlacklistEntry.objects.count() == 0 and blacklist_version(tenant_id=tenant_a.id) == 0


def test_search_and_filters(tenant_a, alice, as_user):
    past = timezone.now() - timedelta(hours=1)
    BlacklistEntry.objects.create(tenant=tenant_a, platform="wecom", platform_user_id="wx-spammer", reason="广告")
    BlacklistEntry.objects.create(tenant=tenant_a, platform="qq", platform_user_id="qq-123", reason="辱骂")
    BlacklistEntry.objects.create(tenant=tenant_a, platform="qq", platform_user_id="qq-old", expires_at=past)
    client = as_user(alice)

    def ids(query: str) -> list[str]:
        response = client.get(f"{URL}?{query}")
        assert response.status_code == 200, response.json()
        return sorted(r["user_id"] for r in response.json()["results"])

    assert ids("q=spam") == ["wx-spammer"]
    assert ids("q=辱骂") == ["qq-123"]
    assert ids("platform=qq") == ["qq-123", "qq-old"]
    assert ids("expired=true") == ["qq-old"]
    assert ids("expired=false") == ["qq-123", "wx-spammer"]
    assert ids("platform=qq&expired=false") == ["qq-123"]
    assert_error(client.get(f"{URL}?platform=myspace"), 400)
