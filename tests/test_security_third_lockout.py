"""Login lock-out: the per-account bucket is keyed with the client network too, so strangers cannot
keep the holder out; a slower limit per account bounds every network together."""

from __future__ import annotations

import pytest
from rest_framework.throttling import SimpleRateThrottle

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_hashing")]

LOGIN = "/api/v1/auth/login"


@pytest.fixture
def rates():
    """No address limit to speak of; 3 per account and network, 6 per account overall."""
    old = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = {
        **old,
        "auth": "1000/min",
        "auth_account": "3/min",
        "auth_account_global": "6/min",
    }
    yield
    SimpleRateThrottle.THROTTLE_RATES = old


def _login(client, password: str, address: str) -> int:
    body = {"tenant": "alpha", "username": "carol", "password": password}
    return client.post(LOGIN, body, format="json", REMOTE_ADDR=address).status_code


def test_wrong_passwords_from_another_network_do_not_lock_the_holder_out(rates, anon, carol):
    # given a stranger spends carol's bucket from their network
    assert [_login(anon, "wrong", f"203.0.113.{i}") for i in range(4)] == [401, 401, 401, 429]
    # then carol, from her own network, still logs in
    assert _login(anon, PASSWORD, "198.51.100.7") == 200


def test_ipv6_clients_are_grouped_by_their_64(rates, anon, carol):
    statuses = [_login(anon, "wrong", f"2001:db8:1:2::{i}") for i in range(1, 5)]
    assert statuses == [401, 401, 401, 429]
    assert _login(anon, PASSWORD, "2001:db8:1:3::1") == 200


def test_rotating_networks_meets_the_slower_per_account_limit(rates, anon, carol):
    # an attacker with many networks gets 6 tries in all, then the account is limited everywhere
    statuses = [_login(anon, "wrong", f"10.{i}.0.1") for i in range(7)]
    assert statuses == [401] * 6 + [429]
