from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from anmei.accounts.models import User
from anmei.tenants.models import Tenant
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def _signup(anon, **overrides):
    body = {"name": "Rose Clinic", "slug": "rose", "contact_email": "ops@rose.test", **overrides}
    return anon.post("/api/v1/tenants/signup", body, format="json")


def test_signup_creates_a_pending_tenant(anon):
    response = _signup(anon)
    assert response.status_code == 201
    tenant = Tenant.objects.get(slug="rose")
    assert response.json() == {"id": tenant.id, "slug": "rose", "status": "pending"}


def test_duplicate_slug_is_a_409(anon):
    _signup(anon)
    assert_error(_signup(anon, name="Other"), 409, "slug_taken")
    assert Tenant.objects.count() == 1


@pytest.mark.parametrize(
    "overrides",
    [{"slug": "no spaces"}, {"slug": ""}, {"name": ""}, {"contact_email": "nope"}, {"name": "x" * 121}, {"slug": 5.5}],
)
def test_bad_signup_is_a_400_and_writes_nothing(anon, overrides):
    assert_error(_signup(anon, **overrides), 400, "validation_error")
    assert Tenant.objects.count() == 0


def test_operator_approves_a_tenant_and_it_accepts_registrations(anon, olga, as_user):
    tenant_id = _signup(anon).json()["id"]
    response = as_user(olga).post(f"/api/v1/tenants/{tenant_id}/approve")
    assert response.status_code == 200
    assert response.json() == {"id": tenant_id, "slug": "rose", "status": "approved"}
    register = anon.post(
        "/api/v1/auth/register", {"tenant": "rose", "username": "first", "password": "long-enough-pw"}, format="json"
    )
    assert register.status_code == 201


def test_approving_twice_keeps_the_first_approval_time(olga, as_user, anon):
    tenant_id = _signup(anon).json()["id"]
    client = as_user(olga)
    client.post(f"/api/v1/tenants/{tenant_id}/approve")
    first = Tenant.objects.get(pk=tenant_id).approved_at
    assert client.post(f"/api/v1/tenants/{tenant_id}/approve").status_code == 200
    assert Tenant.objects.get(pk=tenant_id).approved_at == first


def test_tenant_admin_cannot_approve_tenants(anon, alice, as_user):
    tenant_id = _signup(anon).json()["id"]
    assert_error(as_user(alice).post(f"/api/v1/tenants/{tenant_id}/approve"), 403, "permission_denied")
    assert Tenant.objects.get(pk=tenant_id).status == "pending"


def test_approving_an_unknown_tenant_is_a_404(olga, as_user):
    assert_error(as_user(olga).post("/api/v1/tenants/999999/approve"), 404, "not_found")


def test_bootstrap_tenant_is_idempotent():
    args = ["clinic", "--name", "Clinic", "--admin", "boss:boss-password", "--consultant", "amy:amy-password"]
    first = io.StringIO()
    call_command("bootstrap_tenant", *args, stdout=first)
    assert "created tenant clinic" in first.getvalue()
    tenant = Tenant.objects.get(slug="clinic")
    assert tenant.status == "approved"
    snapshot = list(User.objects.filter(tenant=tenant).order_by("username").values_list("username", "role", "password"))
    assert [(u, r) for u, r, _ in snapshot] == [("amy", "consultant"), ("boss", "admin")]

    second = io.StringIO()
    call_command("bootstrap_tenant", *args, stdout=second)
    assert "nothing to change" in second.getvalue()
    assert (
        list(User.objects.filter(tenant=tenant).order_by("username").values_list("username", "role", "password"))
        == snapshot
    )
    assert Tenant.objects.count() == 1


def test_bootstrap_tenant_updates_a_changed_password_and_approves(db):
    Tenant.objects.create(name="Clinic", slug="clinic", contact_email="", status=Tenant.Status.SUSPENDED)
    call_command(
        "bootstrap_tenant", "clinic", "--name", "Clinic", "--admin", "boss:first-password", stdout=io.StringIO()
    )
    out = io.StringIO()
    call_command("bootstrap_tenant", "clinic", "--name", "Clinic", "--admin", "boss:second-password", stdout=out)
    assert "updated admin boss (password)" in out.getvalue()
    assert User.objects.get(username="boss").check_password("second-password")
    assert Tenant.objects.get(slug="clinic").status == "approved"


def test_seed_demo_is_idempotent():
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo", stdout=io.StringIO())
    assert sorted(User.objects.values_list("username", "role")) == [
        ("admin", "admin"),
        ("consultant", "consultant"),
        ("customer", "customer"),
        ("operator", "operator"),
    ]
