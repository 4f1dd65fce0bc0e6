"""Throttles keyed on the real client address (trusted proxies only) and per account."""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from anmei.common.throttling import client_ip
from tests.conftest import PASSWORD
from tests.helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_hashing")]

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def rates():
    """Small limits for the test: 3 per address, 3 per account (a minute each)."""
    from rest_framework.throttling import SimpleRateThrottle

    old = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = {**old, "auth": "3/min", "auth_account": "3/min"}
    yield
    SimpleRateThrottle.THROTTLE_RATES = old


def test_a_new_forwarded_for_per_request_does_not_reset_the_limit(rates, anon, carol):
    body = {"tenant": "alpha", "username": "nobody", "password": "wrong"}
    statuses = [
        anon.post(
            LOGIN, {**body, "username": f"nobody{i}"}, format="json", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}"
        ).status_code
        for i in range(4)
    ]
    assert statuses == [401, 401, 401, 429]


def test_an_account_is_limited_whatever_address_the_attempts_come_from(rates, anon, carol):
    # given wrong passwords for carol from three different addresses
    wrong = {"tenant": "alpha", "username": "carol", "password": "wrong"}
    statuses = [anon.post(LOGIN, wrong, format="json", REMOTE_ADDR=f"198.51.100.{i}").status_code for i in range(3)]
    # when the right password comes from a fourth address
    right = anon.post(LOGIN, {**wrong, "password": PASSWORD}, format="json", REMOTE_ADDR="198.51.100.99")
    # then it is throttled too (and a different account from that address is not)
    assert statuses == [401, 401, 401]
    error = assert_error(right, 429, "throttled")
    assert error["details"]["retry_after_seconds"] > 0
    other = anon.post(LOGIN, {**wrong, "username": "alice"}, format="json", REMOTE_ADDR="198.51.100.99")
    assert other.status_code == 401


def test_forwarded_for_is_read_only_from_trusted_proxies(settings):
    settings.TRUSTED_PROXIES = ["10.0.0.0/8", "fd00::1"]
    factory = RequestFactory()

    def ip(remote, forwarded=None):
        extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
        return client_ip(factory.get("/", REMOTE_ADDR=remote, **extra))

    assert ip("198.51.100.7", "1.2.3.4") == "198.51.100.7"  # direct client: header ignored
    assert ip("10.1.2.3", "1.2.3.4") == "1.2.3.4"  # via our proxy
    assert ip("10.1.2.3", "6.6.6.6, 1.2.3.4, 10.9.9.9") == "1.2.3.4"  # forged left part skipped
    assert ip("fd00::1", "2001:db8::5") == "2001:db8::5"
    assert ip("10.1.2.3", "not-an-ip") == "10.1.2.3"
    assert ip("10.1.2.3") == "10.1.2.3"


def test_django_admin_login_is_throttled_per_account(rates, client, alice):
    statuses = [
        client.post(
            "/admin/login/", {"username": "alpha/alice", "password": "wrong"}, REMOTE_ADDR=f"192.0.2.{i}"
        ).status_code
        for i in range(3)
    ]
    blocked = client.post("/admin/login/", {"username": "alpha/alice", "password": PASSWORD}, REMOTE_ADDR="192.0.2.50")
    assert statuses == [200, 200, 200]  # the form again, with an error
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0


def test_ws_ticket_is_throttled_per_user(rates, as_user, carol):
    client = as_user(carol)
    statuses = [client.post("/api/v1/auth/ws-ticket", REMOTE_ADDR=f"192.0.2.{i}").status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
