"""Routing settings changes write an audit row (`routing`) in their transaction, from the API and the admin."""

from __future__ import annotations

import pytest

from anmei.audit.models import AuditEntry
from anmei.conversations.models import RoutingSettings
from tests.conftest import client_for
from tests.test_audit_trail import _admin_resubmit

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/admin/routing"


def _rows():
    return AuditEntry.objects.filter(object_type="routing").order_by("id")


def test_api_changes_are_audited_with_only_the_changed_fields(alice, tenant_a):
    client = client_for(alice)
    assert client.put(URL, {"mode": "least_busy", "capacity_per_consultant": 3}, format="json").status_code == 200
    created = _rows().get()
    assert (created.action, created.door, created.actor_id, created.tenant_id) == (
        "create",
        "api",
        alice.id,
        tenant_a.id,
    )
    assert created.changes["mode"] == [None, "least_busy"]
    assert created.changes["capacity_per_consultant"] == [None, 3]

    body = {"mode": "least_busy", "capacity_per_consultant": 4, "off_hours_message": "下班了"}
    assert client.put(URL, body, format="json").status_code == 200
    updated = _rows().last()
    assert updated.action == "update"
    assert updated.changes == {"capacity_per_consultant": [3, 4], "off_hours_message": ["", "下班了"]}

    # the same document again changes nothing and writes no row; a bad one neither
    assert client.put(URL, body, format="json").status_code == 200
    assert client.put(URL, {**body, "mode": "random"}, format="json").status_code == 400
    assert _rows().count() == 2

    listed = client.get("/api/v1/admin/audit-log?object_type=routing").json()["results"]
    assert {r["object_id"] for r in listed} == {str(created.object_id)}


def test_another_tenant_sees_none_of_its_routing_audit(alice, bob):
    client_for(alice).put(URL, {"mode": "round_robin", "capacity_per_consultant": 2}, format="json")
    assert client_for(bob).get("/api/v1/admin/audit-log?object_type=routing").json()["count"] == 0


def test_an_admin_save_of_routing_settings_is_audited_as_the_admin_door(tenant_a, olga):
    from django.test import Client

    routing = RoutingSettings.objects.create(tenant=tenant_a, mode="manual", capacity_per_consultant=5)
    client = Client()
    client.force_login(olga)

    status = _admin_resubmit(
        client,
        f"/admin/conversations/routingsettings/{routing.pk}/change/",
        capacity_per_consultant="7",
        business_hours="{}",
    )

    assert status == 302
    entry = _rows().get()
    assert (entry.door, entry.actor_id, entry.action, entry.tenant_id) == ("admin", olga.id, "update", tenant_a.id)
    assert entry.changes == {"capacity_per_consultant": [5, 7]}
