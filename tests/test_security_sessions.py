"""Password validators and Argon2id, logout and token revocation, one login answer."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import make_password

from anmei.accounts.models import AuthToken, User
from anmei.accounts.services import auth_token_issue
from tests.conftest import PASSWORD, make_tenant
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

LOGIN = "/api/v1/auth/login"


def _login(anon, username, password=PASSWORD, tenant="alpha"):
    return anon.post(LOGIN, {"tenant": tenant, "username": username, "password": password}, format="json")


@pytest.mark.parametrize("password", ["password", "12345678", "87654321", "newbie-x"])
def test_registration_runs_the_password_validators(tenant_a, anon, password):
    body = {"tenant": "alpha", "username": "newbie", "password": password}
    error = assert_error(anon.post("/api/v1/auth/register", body, format="json"), 400, "validation_error")
    assert list(error["details"]["fields"]) == ["password"]
    assert not User.objects.filter(username="newbie").exists()


def test_new_passwords_are_argon2id_with_owasp_parameters(tenant_a, anon):
    body = {"tenant": "alpha", "username": "newbie", "password": PASSWORD}
    assert anon.post("/api/v1/auth/register", body, format="json").status_code == 201
    assert User.objects.get(username="newbie").password.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")


def test_an_old_pbkdf2_hash_still_logs_in_and_is_upgraded_without_revoking_tokens(carol, anon):
    User.objects.filter(pk=carol.pk).update(password=make_password(PASSWORD, hasher="pbkdf2_sha256"))
    auth_token_issue(user=carol)
    assert _login(anon, "carol").status_code == 200
    carol.refresh_from_db()
    assert carol.password.startswith("argon2$argon2id$")
    assert AuthToken.objects.filter(user=carol).count() == 2  # the old session survives a hash upgrade


def test_logout_revokes_only_the_calling_token(carol, as_user):
    first, second = as_user(carol), as_user(carol)
    assert first.post("/api/v1/auth/logout").status_code == 204
    assert_error(first.get("/api/v1/conversations"), 401, "invalid_token")
    assert second.get("/api/v1/conversations").status_code == 200


def test_logout_needs_a_token(anon):
    assert_error(anon.post("/api/v1/auth/logout"), 401)


def test_password_change_checks_old_and_new_and_revokes_every_token(carol, as_user, anon):
    client, other = as_user(carol), as_user(carol)
    url = "/api/v1/auth/password"
    assert_error(client.post(url, {"old_password": "wrong", "new_password": "Fresh-Lantern-42"}, format="json"), 400)
    weak = client.post(url, {"old_password": PASSWORD, "new_password": "12345678"}, format="json")
    assert list(assert_error(weak, 400, "validation_error")["details"]["fields"]) == ["password"]
    assert AuthToken.objects.filter(user=carol).count() == 2
    # when the change is valid
    response = client.post(url, {"old_password": PASSWORD, "new_password": "Fresh-Lantern-42"}, format="json")
    # then every token is gone and only the new password logs in
    assert response.status_code == 204
    assert AuthToken.objects.filter(user=carol).count() == 0
    assert_error(other.get("/api/v1/conversations"), 401, "invalid_token")
    assert _login(anon, "carol").status_code == 401
    assert _login(anon, "carol", "Fresh-Lantern-42").status_code == 200


def test_admin_password_reset_revokes_tokens(client, alice, carol):
    auth_token_issue(user=carol)
    client.force_login(alice)
    response = client.post(
        f"/admin/accounts/user/{carol.pk}/password/",
        {"password1": "Fresh-Lantern-42", "password2": "Fresh-Lantern-42", "usable_password": "true"},
    )
    assert response.status_code == 302
    assert AuthToken.objects.filter(user=carol).count() == 0


def test_admin_password_reset_runs_the_validators(client, alice, carol):
    client.force_login(alice)
    response = client.post(
        f"/admin/accounts/user/{carol.pk}/password/", {"password1": "12345678", "password2": "12345678"}
    )
    assert response.status_code == 200
    carol.refresh_from_db()
    assert carol.check_password(PASSWORD)


def test_tenant_admin_lists_and_revokes_own_tenant_tokens_in_admin(client, alice, carol, bob):
    auth_token_issue(user=carol)
    auth_token_issue(user=bob)
    client.force_login(alice)
    page = client.get("/admin/accounts/authtoken/")
    assert page.status_code == 200
    assert b"alpha/carol" in page.content and b"beta/bob" not in page.content
    token = AuthToken.objects.get(user=carol)
    assert client.post(f"/admin/accounts/authtoken/{token.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not AuthToken.objects.filter(user=carol).exists()


def test_login_gives_one_answer_for_unknown_inactive_tenant_and_bad_password(carol, anon):
    make_tenant("sleepy", status="suspended").users.create(
        username="carol", role="consultant", password=make_password(PASSWORD)
    )
    answers = [
        _login(anon, "carol", tenant="nowhere"),
        _login(anon, "carol", tenant="sleepy"),
        _login(anon, "carol", password="wrong-password"),
        _login(anon, "ghost"),
    ]
    assert {(r.status_code, r.content) for r in answers} == {(401, answers[0].content)}
    assert_error(answers[0], 401, "invalid_credentials")
