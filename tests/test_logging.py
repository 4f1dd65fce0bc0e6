from __future__ import annotations

import json
import logging

import pytest

from anmei.common.logging import JsonFormatter

pytestmark = pytest.mark.django_db


def test_api_requests_are_logged_once_with_tenant_user_and_duration_but_no_secrets(carol, anon, caplog):
    caplog.set_level(logging.INFO, logger="anmei.access")
    login = anon.post(
        "/api/v1/auth/login", {"tenant": "alpha", "username": "carol", "password": "correct-horse-battery"}
    )
    token = login.json()["token"]
    anon.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    anon.get("/api/v1/conversations?status=waiting")

    records = [r for r in caplog.records if r.name == "anmei.access"]
    assert [(r.method, r.path, r.status) for r in records] == [
        ("POST", "/api/v1/auth/login", 200),
        ("GET", "/api/v1/conversations", 200),
    ]
    assert (records[1].tenant_id, records[1].user_id) == (carol.tenant_id, carol.id)
    assert records[1].duration_ms >= 0
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert all(json.loads(line)["event"] for line in lines)
    assert not any(token in line or "correct-horse-battery" in line for line in lines)
