"""Login lock-out: the account holder is told once per episode, through a durable job a real worker runs
(docs/architecture.md, "Hand-offs")."""

from __future__ import annotations

import pytest
from django.db import connection

from anmei.jobs.models import Job
from anmei.notifications.models import Notification
from tests.conftest import make_user
from tests.fixtures_automation import wait_for

pytestmark = [pytest.mark.usefixtures("fast_hashing")]

LOGIN = "/api/v1/auth/login"


def _login(client, tenant: str, username: str, address: str) -> int:
    body = {"tenant": tenant, "username": username, "password": "wrong"}
    return client.post(LOGIN, body, format="json", REMOTE_ADDR=address).status_code


def _jobs_done() -> bool:
    jobs = list(Job.objects.filter(kind="accounts.lockout_notice"))
    return bool(jobs) and all(job.state == Job.State.DONE for job in jobs)


def test_ten_wrong_passwords_from_one_network_tell_the_holder_once(anon, carol, tenant_b, celery_worker):
    # given bob's tenant has its own "carol"
    other_carol = make_user(tenant_b, "carol")
    # when a stranger tries ten wrong passwords for alpha's carol from one network, then keeps going
    statuses = [_login(anon, "alpha", "Carol", f"203.0.113.{i}") for i in range(12)]
    assert statuses == [401] * 10 + [429] * 2
    wait_for(_jobs_done)
    # then carol has exactly one notification, through the notification backend
    notice = Notification.objects.get(user=carol)
    assert (notice.kind, notice.backend, notice.tenant_id) == ("account_lockout", "stored", carol.tenant_id)
    # and a second burst within the episode tells nobody again
    assert [_login(anon, "alpha", "carol", f"203.0.113.{i}") for i in range(5)] == [429] * 5
    assert Job.objects.filter(kind="accounts.lockout_notice").count() == 1
    assert Notification.objects.filter(user=carol).count() == 1
    # and the other tenant's carol got nothing
    assert not Notification.objects.filter(user=other_carol).exists()


def test_the_global_account_limit_tells_the_holder_too(anon, carol, settings, celery_worker):
    from rest_framework.throttling import SimpleRateThrottle

    old = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = {**old, "auth": "1000/min", "auth_account_global": "4/min"}
    try:
        statuses = [_login(anon, "alpha", "carol", f"10.{i}.0.1") for i in range(6)]
    finally:
        SimpleRateThrottle.THROTTLE_RATES = old
    assert statuses == [401] * 4 + [429] * 2
    wait_for(_jobs_done)
    assert Notification.objects.filter(user=carol, kind="account_lockout").count() == 1


def test_a_database_error_while_recording_the_episode_still_answers_429(anon, carol, transactional_db):
    statuses = [_login(anon, "alpha", "carol", "203.0.113.9") for i in range(10)]
    assert statuses == [401] * 10
    # the database refuses every statement from here on (a broken connection)
    with connection.execute_wrapper(_refuse):
        assert _login(anon, "alpha", "carol", "203.0.113.9") == 429
    assert not Job.objects.filter(kind="accounts.lockout_notice").exists()
    # and the next refusal, the database back, opens the episode after all
    assert _login(anon, "alpha", "carol", "203.0.113.9") == 429
    assert Job.objects.filter(kind="accounts.lockout_notice").count() == 1


def _refuse(execute, sql, params, many, context):
    from django.db import OperationalError

    raise OperationalError("server closed the connection unexpectedly")
