"""The web customer's first steps: Chinese errors, a clinic's public name, the guest quick start."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from anmei.accounts.models import AuthToken, User
from anmei.jobs.models import Job
from tests.conftest import PASSWORD, client_for
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_weak_password_errors_are_chinese_for_a_chinese_page_and_name_no_field_in_the_text(tenant_a, anon):
    body = {"tenant": "alpha", "username": "dora", "password": "12345678"}
    error = assert_error(
        anon.post("/api/v1/auth/register", body, format="json", HTTP_ACCEPT_LANGUAGE="zh-CN"), 400, "validation_error"
    )
    messages = error["details"]["fields"]["password"]
    assert messages and all("password" not in m.lower() for m in messages)
    assert any("密码" in m for m in messages), messages
    assert len(messages) == len(set(messages))
    short = {**body, "password": "abc"}
    error = assert_error(anon.post("/api/v1/auth/register", short, format="json", HTTP_ACCEPT_LANGUAGE="zh-CN"), 400)
    assert any("8" in m and "字符" in m for m in error["details"]["fields"]["password"])
    english = assert_error(anon.post("/api/v1/auth/register", body, format="json"), 400)
    assert any("too common" in m for m in english["details"]["fields"]["password"])
    assert not User.objects.filter(username="dora").exists()


def test_the_clinic_page_shows_the_name_of_an_approved_clinic_only(tenant_a, anon):
    from tests.conftest import make_tenant

    assert anon.get("/api/v1/tenants/public?slug=alpha").json() == {"slug": "alpha", "name": "Alpha"}
    make_tenant("pending-clinic", status="pending")
    assert_error(anon.get("/api/v1/tenants/public?slug=pending-clinic"), 403, "tenant_not_active")
    assert_error(anon.get("/api/v1/tenants/public?slug=nope"), 404, "tenant_not_found")
    assert_error(anon.get("/api/v1/tenants/public"), 400, "validation_error")


def test_a_guest_starts_without_a_username_and_later_sets_a_password(tenant_a, anon):
    # when a visitor starts as a guest
    response = anon.post("/api/v1/auth/guest", {"tenant": "alpha", "nickname": "小美"}, format="json")

    # then they are a customer with a token, no usable password, and their registration run is queued
    assert response.status_code == 201, response.content
    body = response.json()
    guest = User.objects.get(pk=body["user"]["id"])
    assert (guest.role, guest.tenant_id, guest.nickname, guest.has_usable_password()) == (
        "customer",
        tenant_a.id,
        "小美",
        False,
    )
    assert guest.username.startswith("guest-") and body["guest"] is True
    assert Job.objects.filter(kind="automation.start", key=f"customer:{guest.id}").count() == 1
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert client.get("/api/v1/conversations").status_code == 200

    # when they choose credentials, then they can log in with them (the guest token is gone)
    saved = client.post("/api/v1/auth/credentials", {"username": "xiaomei", "password": PASSWORD}, format="json")
    assert (saved.status_code, saved.json()["username"]) == (200, "xiaomei")
    assert not AuthToken.objects.filter(user=guest).exists()
    login = anon.post(
        "/api/v1/auth/login", {"tenant": "alpha", "username": "xiaomei", "password": PASSWORD}, format="json"
    )
    assert login.status_code == 200 and login.json()["user"]["id"] == guest.id


def test_credentials_are_set_once_and_only_by_guests(tenant_a, cathy, carol, anon):
    assert_error(
        client_for(cathy).post("/api/v1/auth/credentials", {"username": "c2", "password": PASSWORD}, format="json"),
        409,
        "credentials_already_set",
    )
    assert_error(
        client_for(carol).post("/api/v1/auth/credentials", {"username": "c3", "password": PASSWORD}, format="json"),
        409,
        "credentials_already_set",
    )
    token = anon.post("/api/v1/auth/guest", {"tenant": "alpha"}, format="json").json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    taken = client.post("/api/v1/auth/credentials", {"username": "cathy", "password": PASSWORD}, format="json")
    assert_error(taken, 409, "username_taken")
    assert_error(client.post("/api/v1/auth/credentials", {"username": "ok", "password": "1"}, format="json"), 400)
    assert_error(anon.post("/api/v1/auth/guest", {"tenant": "nope"}, format="json"), 404, "tenant_not_found")
    assert User.objects.filter(username__startswith="guest-").count() == 1
    assert User.objects.get(pk=cathy.pk).username == "cathy"
