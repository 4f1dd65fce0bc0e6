from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

from anmei.accounts.models import AuthToken, User
from anmei.accounts.services import ws_ticket_issue
from anmei.common.crypto import hash_token
from anmei.common.redis import get_redis, tenant_key
from anmei.tenants.models import Tenant
from tests.conftest import PASSWORD, make_tenant
from tests.helpers import assert_error, ws

pytestmark = pytest.mark.django_db(transaction=True)


def _register(anon, **overrides):
    body = {"tenant": "alpha", "username": "newbie", "password": PASSWORD, "nickname": "Newbie"}
    body.update(overrides)
    return anon.post("/api/v1/auth/register", body, format="json")


async def _connect(path, ticket):
    communicator = ws(path, ticket)
    connected, _ = await communicator.connect()
    assert connected  # accepted, then closed with a 4xxx code when the ticket is bad
    return communicator


async def _expect_close(path, ticket, code):
    communicator = await _connect(path, ticket)
    message = await communicator.receive_output(timeout=3)
    assert message == {"type": "websocket.close", "code": code}
    await communicator.disconnect()


async def test_register_login_ticket_then_customer_websocket_connects(tenant_a, anon):
    response = await sync_to_async(_register)(anon)
    assert response.status_code == 201, response.json()
    created = response.json()
    assert set(created) == {"id", "username", "tenant", "role", "created_at"}
    assert (created["username"], created["tenant"], created["role"]) == ("newbie", "alpha", "customer")

    login = await sync_to_async(anon.post)(
        "/api/v1/auth/login", {"tenant": "alpha", "username": "newbie", "password": PASSWORD}, format="json"
    )
    assert login.status_code == 200
    assert login.json()["user"] == {"id": created["id"], "username": "newbie", "role": "customer"}
    token = login.json()["token"]
    assert token.startswith("anm_")
    assert await AuthToken.objects.filter(key_hash=hash_token(token)).aexists()
    assert not await AuthToken.objects.filter(key_hash=token).aexists()  # never stored in clear

    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    ticket_response = await sync_to_async(anon.post)("/api/v1/auth/ws-ticket")
    assert ticket_response.status_code == 200
    ticket = ticket_response.json()["ticket"]

    communicator = await _connect("/ws/customer/", ticket)
    assert await communicator.receive_json_from(timeout=3) == {
        "type": "connection.ready",
        "user_id": created["id"],
        "role": "customer",
    }
    await communicator.send_json_to({"type": "ping"})
    assert await communicator.receive_json_from(timeout=3) == {"type": "pong"}
    await communicator.disconnect()


async def test_reused_ticket_is_refused(carol):
    ticket = await sync_to_async(ws_ticket_issue)(user=carol)
    first = await _connect("/ws/console/", ticket)
    assert (await first.receive_json_from(timeout=3))["type"] == "connection.ready"
    await _expect_close("/ws/console/", ticket, 4401)
    await first.disconnect()


async def test_expired_ticket_is_refused(carol):
    ticket = await sync_to_async(ws_ticket_issue)(user=carol)
    key = tenant_key(carol.tenant_id, "wsticket", hash_token(ticket))
    assert 0 < get_redis().ttl(key) <= 60
    get_redis().delete(key)  # what Redis does when the 60 s TTL runs out
    await _expect_close("/ws/console/", ticket, 4401)


@pytest.mark.parametrize("ticket", ["", "garbage", "1.forged-ticket", "x" * 500, "p.nope", "../../etc"])
async def test_bad_tickets_are_refused(carol, ticket):
    await _expect_close("/ws/console/", ticket, 4400 if ticket == "" else 4401)


async def test_missing_ticket_is_refused(carol):
    await _expect_close("/ws/console/", None, 4400)


async def test_customer_ticket_cannot_open_the_console(cathy):
    ticket = await sync_to_async(ws_ticket_issue)(user=cathy)
    await _expect_close("/ws/console/", ticket, 4403)


async def test_ticket_of_another_tenant_id_prefix_is_refused(carol, bob):
    ticket = await sync_to_async(ws_ticket_issue)(user=carol)
    forged = f"{bob.tenant_id}.{ticket.split('.', 1)[1]}"
    await _expect_close("/ws/console/", forged, 4401)


def test_ws_ticket_requires_authentication(anon):
    assert_error(anon.post("/api/v1/auth/ws-ticket"), 401, "not_authenticated")


def test_same_username_in_two_tenants_is_allowed(tenant_a, tenant_b, anon):
    assert _register(anon).status_code == 201
    assert _register(anon, tenant="beta").status_code == 201
    assert User.objects.filter(username="newbie").count() == 2


def test_duplicate_username_is_a_409_and_writes_nothing(tenant_a, anon):
    assert _register(anon).status_code == 201
    assert_error(_register(anon, nickname="Other"), 409, "username_taken")
    assert User.objects.filter(username="newbie").count() == 1


def test_unknown_tenant_is_refused(db, anon):
    assert_error(_register(anon, tenant="nowhere"), 404, "tenant_not_found")
    assert User.objects.count() == 0


@pytest.mark.parametrize("status", [Tenant.Status.PENDING, Tenant.Status.SUSPENDED])
def test_registration_and_login_into_inactive_tenant_fail(db, anon, status):
    tenant = make_tenant("gamma", status=status)
    assert_error(_register(anon, tenant="gamma"), 403, "tenant_not_active")
    assert not User.objects.filter(tenant=tenant).exists()
    User.objects.create_user(username="staff", password=PASSWORD, tenant=tenant, role="consultant")
    response = anon.post("/api/v1/auth/login", {"tenant": "gamma", "username": "staff", "password": PASSWORD})
    assert_error(response, 401, "invalid_credentials")  # login does not tell an inactive tenant apart
    assert AuthToken.objects.count() == 0


def test_suspending_a_tenant_stops_its_tokens(carol, as_user):
    client = as_user(carol)
    assert client.get("/api/v1/conversations").status_code == 200
    Tenant.objects.filter(pk=carol.tenant_id).update(status=Tenant.Status.SUSPENDED)
    assert_error(client.get("/api/v1/conversations"), 401, "tenant_not_active")


def test_wrong_password_and_unknown_user_look_the_same(cathy, anon):
    for username, password in (("cathy", "wrong-password"), ("ghost", PASSWORD)):
        response = anon.post("/api/v1/auth/login", {"tenant": "alpha", "username": username, "password": password})
        assert_error(response, 401, "invalid_credentials")
    assert AuthToken.objects.count() == 0


def test_operator_logs_in_without_tenant(olga, anon):
    response = anon.post("/api/v1/auth/login", {"username": "olga", "password": PASSWORD}, format="json")
    assert response.status_code == 200
    assert response.json()["user"]["role"] == "operator"


def test_tenant_user_cannot_log_in_without_tenant(carol, anon):
    response = anon.post("/api/v1/auth/login", {"username": "carol", "password": PASSWORD}, format="json")
    assert_error(response, 401, "invalid_credentials")


def test_invalid_and_expired_bearer_tokens_are_refused(carol, anon, as_user):
    anon.credentials(HTTP_AUTHORIZATION="Bearer anm_not-a-real-token")
    assert_error(anon.get("/api/v1/conversations"), 401, "invalid_token")
    client = as_user(carol)
    AuthToken.objects.update(expires_at="2000-01-01T00:00:00Z")
    assert_error(client.get("/api/v1/conversations"), 401, "invalid_token")


BAD_REGISTRATIONS = [
    ({"tenant": None}, "tenant"),
    ({"username": ""}, "username"),
    ({"username": "x" * 151}, "username"),
    ({"username": "has space"}, "username"),
    ({"username": 12345}, None),
    ({"password": "short"}, "password"),
    ({"password": "p" * 129}, "password"),
    ({"password": ["list"]}, "password"),
    ({"email": "not-an-email"}, "email"),
    ({"phone": "call me"}, "phone"),
    ({"nickname": "n" * 65}, "nickname"),
    ({"tenant": "bad slug!"}, "tenant"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_REGISTRATIONS)
def test_bad_registration_input_is_a_400_and_writes_nothing(tenant_a, anon, overrides, field):
    response = _register(anon, **overrides)
    if field is None:  # a number where a string is expected is coerced by DRF: accepted, not a 500
        assert response.status_code in (201, 400)
        return
    error = assert_error(response, 400, "validation_error")
    assert field in error["details"]["fields"]
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        ("{not json", "application/json", "malformed_request"),
        ("[1, 2, 3]", "application/json", "validation_error"),
        ('"a string"', "application/json", "validation_error"),
        ("tenant=alpha", "text/plain", "unsupported_media_type"),
    ],
)
def test_malformed_bodies_are_4xx(tenant_a, anon, body, content_type, code):
    response = anon.generic("POST", "/api/v1/auth/register", body, content_type=content_type)
    assert_error(response, 415 if code == "unsupported_media_type" else 400, code)
    assert User.objects.count() == 0


def test_oversized_body_is_a_413(tenant_a, anon):
    response = _register(anon, nickname="n" * 300_000)
    assert_error(response, 413, "payload_too_large")
    assert User.objects.count() == 0


def test_wrong_method_and_unknown_path_use_the_error_shape(anon):
    assert_error(anon.get("/api/v1/auth/register"), 405, "method_not_allowed")
    assert_error(anon.get("/api/v1/no-such-endpoint"), 404, "not_found")


@override_settings()
def test_auth_endpoints_are_throttled(tenant_a, anon, settings):
    from rest_framework.settings import api_settings

    rates = {**api_settings.DEFAULT_THROTTLE_RATES, "auth": "3/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    from rest_framework.throttling import SimpleRateThrottle

    old = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = rates
    try:
        body = {"tenant": "alpha", "username": "nobody", "password": "wrong-password"}
        statuses = [anon.post("/api/v1/auth/login", body, format="json").status_code for _ in range(3)]
        assert statuses == [401, 401, 401]
        error = assert_error(anon.post("/api/v1/auth/login", body, format="json"), 429, "throttled")
        assert error["details"]["retry_after_seconds"] > 0
    finally:
        SimpleRateThrottle.THROTTLE_RATES = old


@pytest.mark.parametrize("method", ["get", "post", "delete"])
def test_unknown_api_path_is_the_json_error_in_debug(anon, settings, method):
    settings.DEBUG = True
    response = getattr(anon, method)("/api/v1/no-such-endpoint/deeper")
    assert response["Content-Type"] == "application/json"
    assert_error(response, 404, "not_found")
