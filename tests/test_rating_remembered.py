"""GET /api/v1/conversations/<id>/rating: a rated conversation stays rated for its customer's pages."""

from __future__ import annotations

import pytest

from anmei.conversations.models import Conversation
from tests.conftest import client_for, make_user
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def ended(cathy):
    return Conversation.objects.create(tenant=cathy.tenant, customer=cathy, status="ended")


def test_rating_is_remembered_for_the_customer_and_staff(ended, cathy, carol):
    client = client_for(cathy)
    url = f"/api/v1/conversations/{ended.id}/rating"
    assert client.get(url).json() == {
        "conversation_id": ended.id,
        "rated": False,
        "score": None,
        "comment": None,
        "created_at": None,
    }

    assert client.post(url, {"score": 4, "comment": "很专业"}, format="json").status_code == 201

    body = client.get(url).json()
    assert (body["rated"], body["score"], body["comment"]) == (True, 4, "很专业")
    assert client_for(carol).get(url).json()["rated"] is True


def test_others_cannot_read_it(ended, tenant_a, tenant_b):
    url = f"/api/v1/conversations/{ended.id}/rating"
    assert_error(client_for(make_user(tenant_a, "other")).get(url), 404, "not_found")
    assert_error(client_for(make_user(tenant_b, "outsider", "consultant")).get(url), 404, "not_found")
