"""`GET|PUT /api/v1/admin/routing`: a tenant admin's routing mode, capacity and business hours (docs/routing.md)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from anmei.conversations.models import RoutingSettings
from tests.conftest import client_for
from tests.helpers import assert_error

URL = "/api/v1/admin/routing"
HOURS = {
    "timezone": "Asia/Shanghai",
    "weekly": {
        "mon": [["09:00", "12:00"], ["13:30", "18:00"]],
        "sat": [["10:00", "16:00"]],
        "fri": [["20:00", "24:00"]],
    },
    "holidays": ["2027-02-11", "2027-01-01", "2027-01-01"],
}
GOOD = {"mode": "least_busy", "capacity_per_consultant": 3, "business_hours": HOURS, "off_hours_message": "下班了"}


@pytest.mark.django_db
def test_defaults_are_manual_routing_without_hours_and_reading_writes_nothing(alice):
    assert client_for(alice).get(URL).json() == {
        "mode": "manual",
        "capacity_per_consultant": 5,
        "business_hours": None,
        "off_hours_message": "",
    }
    assert not RoutingSettings.objects.exists()


@pytest.mark.django_db
def test_admin_replaces_the_settings_and_reads_them_back(alice, tenant_a):
    client = client_for(alice)
    put = client.put(URL, GOOD, format="json")
    expected = {**GOOD, "business_hours": {**HOURS, "holidays": ["2027-01-01", "2027-02-11"]}}
    assert put.status_code == 200, put.content
    assert put.json() == expected
    assert client.get(URL).json() == expected
    stored = RoutingSettings.objects.get()
    assert (stored.tenant_id, stored.mode, stored.capacity_per_consultant) == (tenant_a.id, "least_busy", 3)
    # a second PUT replaces the row (one per tenant), and clearing the hours means "always open"
    again = client.put(
        URL, {"mode": "round_robin", "capacity_per_consultant": 1, "business_hours": None}, format="json"
    )
    assert again.json() == {
        "mode": "round_robin",
        "capacity_per_consultant": 1,
        "business_hours": None,
        "off_hours_message": "",
    }
    assert RoutingSettings.objects.count() == 1


BAD = [
    {**GOOD, "mode": "random"},
    {**GOOD, "capacity_per_consultant": 0},
    {**GOOD, "capacity_per_consultant": "many"},
    {k: v for k, v in GOOD.items() if k != "mode"},
    {**GOOD, "business_hours": {**HOURS, "timezone": "Mars/Olympus"}},
    {**GOOD, "business_hours": {**HOURS, "weekly": {"monday": [["09:00", "12:00"]]}}},
    {**GOOD, "business_hours": {**HOURS, "weekly": {"mon": [["12:00", "09:00"]]}}},
    {**GOOD, "business_hours": {**HOURS, "weekly": {"mon": [["9:00", "12:00"]]}}},
    {**GOOD, "business_hours": {**HOURS, "weekly": {"mon": [["09:00", "24:01"]]}}},
    {**GOOD, "business_hours": {**HOURS, "weekly": {"mon": [["24:00", "24:00"]]}}},
    {**GOOD, "business_hours": {**HOURS, "weekly": {"mon": [["09:00"]]}}},
    {**GOOD, "business_hours": {**HOURS, "holidays": ["2027-13-01"]}},
    {**GOOD, "business_hours": {**HOURS, "extra": 1}},
    {**GOOD, "business_hours": "9-18"},
    {**GOOD, "off_hours_message": "x" * 2001},
]


@pytest.mark.django_db
@pytest.mark.parametrize("body", BAD)
def test_bad_settings_are_a_400_and_change_nothing(alice, body):
    client = client_for(alice)
    assert client.put(URL, GOOD, format="json").status_code == 200
    before = client.get(URL).json()
    assert_error(client.put(URL, body, format="json"), 400)
    assert client.get(URL).json() == before


@pytest.mark.django_db
def test_only_the_tenants_admin_reads_or_changes_its_routing(alice, carol, cathy, bob, anon):
    assert client_for(alice).put(URL, GOOD, format="json").status_code == 200
    for user in (carol, cathy):
        assert_error(client_for(user).get(URL), 403)
        assert_error(client_for(user).put(URL, {**GOOD, "mode": "manual"}, format="json"), 403)
    assert anon.get(URL).status_code in (401, 403)
    # the other tenant's admin sees its own defaults and its PUT lands on its own row only
    assert client_for(bob).get(URL).json()["mode"] == "manual"
    assert client_for(bob).put(URL, {**GOOD, "mode": "round_robin"}, format="json").status_code == 200
    assert client_for(alice).get(URL).json()["mode"] == "least_busy"
    assert RoutingSettings.objects.count() == 2


@pytest.mark.django_db
def test_the_admin_form_checks_business_hours_as_the_api_does(tenant_a):
    settings = RoutingSettings(tenant=tenant_a, business_hours={"timezone": "Asia/Shanghai", "weekly": {"xx": []}})
    with pytest.raises(ValidationError):
        settings.full_clean()
    settings.business_hours = HOURS
    settings.full_clean()
