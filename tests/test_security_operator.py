"""Issue 8 §1 and §9: operator rights need a tenant-less platform account; admin filters are scoped.

A tenant account whose role field says `operator` (the flags forced in the database as an attacker
would leave them) must get no operator rights at any door: REST, Django admin, MCP admin selectors,
the dashboard page. Tenant admins cannot grant a role above their own in Django admin.
"""

from __future__ import annotations

import pytest
from django.db import connection

from anmei.accounts.models import User
from anmei.mcp_admin.selectors.config import group_list
from anmei.mcp_admin.selectors.metrics import call_metrics
from anmei.mcp_admin.services import mcp_group_create
from tests.conftest import make_tenant, make_user
from tests.helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_hashing")]


@pytest.fixture
def rogue(tenant_a) -> User:
    """A tenant-A account that claims to be an operator, with every Django flag set.

    The database refuses such a row (`user_operator_iff_no_tenant`); the check is dropped inside
    the test's transaction (rolled back after) to prove the code refuses it as well.
    """
    user = make_user(tenant_a, "rogue", User.Role.CONSULTANT)
    constraint = next(c for c in User._meta.constraints if c.name == "user_operator_iff_no_tenant")
    with connection.cursor() as cursor:  # deferred FK checks of the fixtures would block ALTER TABLE
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    with connection.schema_editor() as editor:
        editor.remove_constraint(User, constraint)
    User.objects.filter(pk=user.pk).update(role="operator", is_staff=True, is_superuser=True)
    return User.objects.get(pk=user.pk)


def test_a_tenant_account_with_role_operator_is_not_an_operator(rogue, olga):
    assert (rogue.is_operator, olga.is_operator) == (False, True)


def test_rest_doors_refuse_a_tenant_account_claiming_operator(as_user, rogue, tenant_b):
    # given a pending tenant and another tenant's MCP group
    pending = make_tenant("pending", status="pending")
    mcp_group_create(tenant=tenant_b, name="beta-group")
    client = as_user(rogue)
    # then every operator door answers 403
    assert_error(client.post(f"/api/v1/tenants/{pending.pk}/approve"), 403)
    assert_error(client.get("/api/v1/mcp-config/groups", {"tenant": tenant_b.pk}), 403)
    assert_error(client.get("/api/v1/mcp-config/metrics", {"tenant": tenant_b.pk}), 403)
    assert_error(client.get("/api/v1/admin/registration-automation/dashboard", {"tenant": tenant_b.pk}), 403)
    pending.refresh_from_db()
    assert pending.status == "pending"


def test_mcp_admin_selectors_give_a_claimed_operator_nothing(rogue, tenant_a, tenant_b):
    mcp_group_create(tenant=tenant_a, name="alpha-group")
    mcp_group_create(tenant=tenant_b, name="beta-group")
    assert list(group_list(actor=rogue)) == []
    assert call_metrics(actor=rogue, tenant_id=tenant_b.pk)["total_calls"] == 0
    assert call_metrics(actor=rogue)["tools"] == []


def test_django_admin_and_dashboard_page_refuse_a_claimed_operator(client, rogue, tenant_b):
    client.force_login(rogue)
    pages = ["/admin/tenants/tenant/", "/admin/mcp_admin/mcptoolgroup/", "/admin/accounts/user/"]
    pages += ["/admin/django_celery_beat/periodictask/", f"/admin/registration-automation/?tenant={tenant_b.pk}"]
    assert {page: client.get(page).status_code for page in pages} == dict.fromkeys(pages, 403)


def test_the_real_operator_still_has_every_door(as_user, client, olga, tenant_b):
    pending = make_tenant("pending", status="pending")
    assert as_user(olga).post(f"/api/v1/tenants/{pending.pk}/approve").status_code == 200
    assert as_user(olga).get("/api/v1/mcp-config/groups", {"tenant": tenant_b.pk}).status_code == 200
    client.force_login(olga)
    assert client.get("/admin/tenants/tenant/").status_code == 200


def _add_user(client, **fields):
    body = {
        "username": "mallory",
        "role": "customer",
        "password1": "Plum-Tree-Orbit-71",
        "password2": "Plum-Tree-Orbit-71",
    }
    body.update(fields)
    return client.post("/admin/accounts/user/add/", body)


def test_tenant_admin_cannot_create_an_operator_in_django_admin(client, alice, tenant_b):
    client.force_login(alice)
    # when the tenant admin posts role=operator (and tries another tenant and the superuser flag)
    response = _add_user(client, role="operator", tenant=tenant_b.pk, is_superuser="on", is_staff="on")
    # then the form refuses the role and no user exists
    assert response.status_code == 200
    assert "role" in response.context["adminform"].form.errors
    assert not User.objects.filter(username="mallory").exists()
    # and a permitted role lands in the admin's own tenant with no superuser flag
    assert _add_user(client, tenant=tenant_b.pk, is_superuser="on", is_staff="on").status_code == 302
    mallory = User.objects.get(username="mallory")
    assert (mallory.tenant_id, mallory.role, mallory.is_staff, mallory.is_superuser) == (
        alice.tenant_id,
        "customer",
        False,
        False,
    )


def test_tenant_admin_cannot_promote_a_user_to_operator(client, alice, carol):
    client.force_login(alice)
    page = client.get(f"/admin/accounts/user/{carol.pk}/change/")
    assert page.status_code == 200
    roles = [value for value, _ in page.context["adminform"].form.fields["role"].choices]
    assert roles == ["customer", "consultant", "admin"]
    carol.refresh_from_db()
    assert carol.role == "consultant"


def test_operator_role_with_a_tenant_is_invalid_even_for_operators(client, olga, tenant_a):
    client.force_login(olga)
    response = _add_user(client, role="operator", tenant=tenant_a.pk)
    assert response.status_code == 200
    assert "role" in response.context["adminform"].form.errors
    assert not User.objects.filter(username="mallory").exists()


def test_tenant_admin_filter_sidebar_lists_only_own_tenant_values(client, alice, olga, tenant_a, tenant_b):
    # given groups in both tenants and a tool of each
    mcp_group_create(tenant=tenant_a, name="alpha-group")
    mcp_group_create(tenant=tenant_b, name="beta-group")
    client.force_login(alice)
    pages = [
        client.get(url).content
        for url in ("/admin/mcp_admin/mcptool/", "/admin/mcp_admin/mcpcalllog/", "/admin/accounts/user/")
    ]
    # then neither the other tenant's name nor its group appears in any sidebar
    assert [(b"Beta" in page, b"beta-group" in page) for page in pages] == [(False, False)] * 3
    client.force_login(olga)
    assert b"Beta" in client.get("/admin/accounts/user/").content


def test_admin_add_user_checks_usernames_within_the_tenant_only(client, alice, bob, carol):
    client.force_login(alice)
    # a name another tenant uses is free here (and its use elsewhere is not revealed)
    assert _add_user(client, username="bob").status_code == 302
    assert User.objects.filter(username="bob").count() == 2
    # a name taken in the own tenant is refused
    response = _add_user(client, username="Carol")
    assert response.status_code == 200
    assert "username" in response.context["adminform"].form.errors
