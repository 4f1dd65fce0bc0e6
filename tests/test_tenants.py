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


def test_signed_up_clinic_admin_logs_in_after_approval_to_api_and_admin(anon, olga, as_user, fast_hashing):
    from django.test import Client

    # given a clinic that signs up with its admin's login
    response = _signup(anon, admin_username="rose-admin", admin_password="Rose-Clinic-2026!")
    assert response.status_code == 201, response.json()
    tenant = Tenant.objects.get(slug="rose")
    assert response.json() == {"id": tenant.id, "slug": "rose", "status": "pending", "admin_username": "rose-admin"}
    admin = User.objects.get(tenant=tenant)
    assert (admin.username, admin.role, admin.email, admin.is_staff) == ("rose-admin", "admin", "ops@rose.test", True)
    login = {"tenant": "rose", "username": "rose-admin", "password": "Rose-Clinic-2026!"}

    # when the admin tries before approval, then the operator approves, then the admin logs in
    before = anon.post("/api/v1/auth/login", login, format="json")
    assert as_user(olga).post(f"/api/v1/tenants/{tenant.id}/approve").status_code == 200
    after = anon.post("/api/v1/auth/login", login, format="json")
    browser = Client()
    admin_login = browser.post(
        "/admin/login/?next=/admin/",
        {"username": "rose/rose-admin", "password": "Rose-Clinic-2026!", "next": "/admin/"},
        follow=True,
    )

    # then the first is refused, the API login works and Django admin opens for them
    assert_error(before, 401, "invalid_credentials")
    assert after.status_code == 200 and after.json()["user"]["role"] == "admin"
    assert admin_login.status_code == 200 and admin_login.request["PATH_INFO"] == "/admin/"
    assert browser.get("/admin/").status_code == 200


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"admin_username": "rose-admin"}, "admin_password"),
        ({"admin_password": "Rose-Clinic-2026!"}, "admin_username"),
        ({"admin_username": "rose-admin", "admin_password": "123"}, "password"),
    ],
)
def test_signup_with_an_incomplete_or_weak_admin_login_writes_nothing(anon, overrides, field):
    response = _signup(anon, **overrides)
    assert_error(response, 400, "validation_error")
    assert field in str(response.json()["error"])
    assert (Tenant.objects.count(), User.objects.count()) == (0, 0)
