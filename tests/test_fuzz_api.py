"""Schema-driven fuzzing: every operation in /api/schema/, random valid and invalid inputs, no 5xx.

Runs each operation as an anonymous client and as a tenant admin, so both the auth refusals and
the validation paths behind them are exercised.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.test import APIClient
from schemathesis.core import NotSet

from anmei.accounts.services import auth_token_issue

MAX_EXAMPLES = 12

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(anon):
    response = anon.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    return schemathesis.openapi.from_dict(response.json())


def _send(client: APIClient, case) -> int:
    """Send a generated case through Django's test client (same DB transaction as the test)."""
    headers = {k: v for k, v in (case.headers or {}).items() if isinstance(v, str) and k.lower() != "content-type"}
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    query = urlencode(case.query or {}, doseq=True)
    path = case.formatted_path + (f"?{query}" if query else "")
    method = case.method.lower()
    if method in ("get", "delete", "head", "options"):
        return getattr(client, method)(path, **extra).status_code
    media = case.media_type or "application/json"
    if isinstance(case.body, NotSet):
        return client.generic(method.upper(), path, "", content_type="application/json", **extra).status_code
    if "json" in media:
        body = json.dumps(case.body) if case.body is not None else ""
        return client.generic(method.upper(), path, body, content_type="application/json", **extra).status_code
    data = case.body if isinstance(case.body, dict) else {}
    flat = {k: v if isinstance(v, (str, bytes)) else json.dumps(v) for k, v in data.items()}
    return getattr(client, method)(path, flat, format="multipart", **extra).status_code


def _operations(schema):
    return [result.ok() for result in schema.get_all_operations()]


def test_schema_lists_the_api_md_endpoints(schema):
    paths = {op.path for op in _operations(schema)}
    assert {
        "/api/v1/tenants/signup",
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/ws-ticket",
        "/api/v1/conversations",
        "/api/v1/conversations/{conversation_id}/messages",
        "/api/v1/health",
    } <= paths


def test_no_operation_answers_5xx_to_generated_input(schema, alice, cathy, settings_override):
    clients = {"anonymous": APIClient(), "admin": APIClient(), "customer": APIClient()}
    clients["admin"].credentials(HTTP_AUTHORIZATION=f"Bearer {auth_token_issue(user=alice)}")
    clients["customer"].credentials(HTTP_AUTHORIZATION=f"Bearer {auth_token_issue(user=cathy)}")
    failures: list[str] = []
    for operation in _operations(schema):
        if operation.path in ("/api/v1/health", "/api/v1/health/ready"):
            continue  # its 503 is the contract when no worker runs, not a server error
        for who, client in clients.items():
            _fuzz(operation, client, who, failures)
    assert failures == []


def _fuzz(operation, client: APIClient, who: str, failures: list[str]) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case):
        status = _send(client, case)
        if status >= 500:
            failures.append(f"{who} {case.method} {case.formatted_path} -> {status}")

    run()


@pytest.fixture
def settings_override(settings):
    """Lift auth throttles so the fuzzer exercises validation, not the rate limiter."""
    from rest_framework.throttling import SimpleRateThrottle

    old = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = {**old, "auth": "100000/min", "signup": "100000/min"}
    yield
    SimpleRateThrottle.THROTTLE_RATES = old
