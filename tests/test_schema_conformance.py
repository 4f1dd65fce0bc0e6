"""Schema truthfulness: every operation's answers match /api/schema/ (schemathesis checks).

For each operation and each kind of caller (tenant admin, consultant, customer, bot, API key, and
anonymous) a few generated requests go through Django's test client; schemathesis then checks the
status code is documented, the content type is the documented one, and the body matches the
documented schema (errors included). Bounded: MAX_EXAMPLES per operation and caller.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from rest_framework.test import APIClient
from schemathesis.core import NotSet
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from anmei.accounts.services import auth_token_issue
from anmei.apikeys.models import ApiKey
from anmei.apikeys.services import api_key_create
from anmei.conversations.models import Conversation, Message
from tests.fixtures_bots import make_bot

MAX_EXAMPLES = 2
CHECKS = [status_code_conformance, content_type_conformance, response_schema_conformance]

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_hashing")]


@pytest.fixture
def no_throttles():
    from rest_framework.throttling import SimpleRateThrottle

    old = SimpleRateThrottle.THROTTLE_RATES
    SimpleRateThrottle.THROTTLE_RATES = {k: "1000000/min" for k in old}
    yield
    SimpleRateThrottle.THROTTLE_RATES = old


def _client(token: str | None) -> APIClient:
    client = APIClient()
    if token:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def _send(client: APIClient, case):
    """Send a generated case through Django's test client; return it as a schemathesis Response."""
    headers = {k: v for k, v in (case.headers or {}).items() if isinstance(v, str) and k.lower() != "content-type"}
    extra = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items() if k.lower() != "authorization"}
    query = urlencode(case.query or {}, doseq=True)
    path = case.formatted_path + (f"?{query}" if query else "")
    method = case.method.upper()
    if isinstance(case.body, NotSet):
        body, content_type = "", "application/json"
    elif "json" in (case.media_type or "application/json"):
        body, content_type = json.dumps(case.body), "application/json"
    else:
        data = case.body if isinstance(case.body, dict) else {}
        body = {k: v if isinstance(v, str | bytes) else json.dumps(v) for k, v in data.items()}
        content_type = None
    if content_type is None:
        response = (
            client.generic(method, path, **extra)
            if method in ("GET", "DELETE")
            else getattr(client, method.lower())(path, body, format="multipart", **extra)
        )
    else:
        response = client.generic(method, path, body, content_type=content_type, **extra)
    prepared = requests.Request(method, f"http://testserver{path}").prepare()
    return Response(
        status_code=response.status_code,
        headers={k.lower(): [v] for k, v in response.headers.items()},
        content=response.content,
        request=prepared,
        elapsed=0.0,
        verify=True,
    )


def test_every_operation_answers_as_documented(anon, alice, carol, cathy, tenant_a, no_throttles):
    schema = schemathesis.openapi.from_dict(anon.get("/api/schema/", HTTP_ACCEPT="application/json").json())
    conversation = Conversation.objects.create(tenant=tenant_a, customer=cathy, channel="web", consultant=carol)
    Message.objects.create(
        tenant=tenant_a, conversation=conversation, sender_type="customer", sender=cathy, content="hi"
    )
    _bot, bot_token, _secret = make_bot(tenant_a, callback_url="http://127.0.0.1:9/")
    api_key, key = api_key_create(actor=alice, name="all", scopes=list(ApiKey.Scope.values))
    ApiKey.objects.filter(pk=api_key.pk).update(rate_limit_per_minute=100000)
    callers = {
        "anonymous": None,
        "admin": auth_token_issue(user=alice),
        "consultant": auth_token_issue(user=carol),
        "customer": auth_token_issue(user=cathy),
        "bot": bot_token,
        "api key": key,
    }
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:
        for who, token in callers.items():
            _check(operation, _client(token), who, failures)
    assert failures == []


def _check(operation, client: APIClient, who: str, failures: list[str]) -> None:
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case):
        response = _send(client, case)
        try:
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # noqa: BLE001 - collect every operation's failures, report them together
            failures.append(f"{who} {case.method} {case.formatted_path} -> {response.status_code}: {str(exc)[:300]}")

    run()
