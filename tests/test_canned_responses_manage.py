"""Canned responses: consultants and admins manage them, customers and other tenants cannot; the demo
tenant starts with a handful."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from anmei.ai.models import CannedResponse
from anmei.ai.selectors import canned_responses_matching
from anmei.tenants.models import Tenant
from tests.conftest import client_for
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_a_consultant_creates_edits_and_deletes_a_canned_response(carol, alice):
    client = client_for(carol)

    created = client.post(
        "/api/v1/canned-responses",
        {"shortcode": "addr", "text": "我们在人民路 1 号", "keywords": ["地址", "在哪"]},
        format="json",
    )
    assert created.status_code == 201
    item_id = created.json()["id"]
    updated = client.put(f"/api/v1/canned-responses/{item_id}", {"keywords": ["地址"]}, format="json")
    assert (updated.status_code, updated.json()["keywords"]) == (200, ["地址"])
    # the admin sees the consultant's, and may delete it
    assert [r["shortcode"] for r in client_for(alice).get("/api/v1/canned-responses").json()] == ["addr"]
    assert client_for(alice).delete(f"/api/v1/canned-responses/{item_id}").status_code == 204
    assert not CannedResponse.objects.exists()


def test_a_customer_cannot_read_or_manage_canned_responses(cathy, tenant_a):
    item = CannedResponse.objects.create(tenant=tenant_a, shortcode="price", text="面诊定价", keywords=["价格"])
    client = client_for(cathy)

    assert_error(client.get("/api/v1/canned-responses"), 403, "permission_denied")
    assert_error(client.post("/api/v1/canned-responses", {"shortcode": "x", "text": "x"}, format="json"), 403)
    assert_error(client.put(f"/api/v1/canned-responses/{item.id}", {"text": "改"}, format="json"), 403)
    assert_error(client.delete(f"/api/v1/canned-responses/{item.id}"), 403)
    item.refresh_from_db()
    assert (item.text, CannedResponse.objects.count()) == ("面诊定价", 1)


def test_another_tenants_consultant_cannot_touch_them(ben, tenant_a):
    item = CannedResponse.objects.create(tenant=tenant_a, shortcode="price", text="面诊定价")

    assert client_for(ben).get("/api/v1/canned-responses").json() == []
    assert_error(client_for(ben).put(f"/api/v1/canned-responses/{item.id}", {"text": "x"}, format="json"), 404)
    assert_error(client_for(ben).delete(f"/api/v1/canned-responses/{item.id}"), 404)
    assert CannedResponse.objects.get(pk=item.pk).text == "面诊定价"


def test_the_demo_tenant_is_seeded_with_canned_responses_once_and_edits_are_kept():
    call_command("seed_demo", stdout=io.StringIO())
    call_command("seed_demo_canned_responses", stdout=io.StringIO())
    demo = Tenant.objects.get(slug="demo")
    price = CannedResponse.objects.get(tenant=demo, shortcode="price")
    price.text = "本院价格透明，面诊后报价"
    price.save()

    call_command("seed_demo_canned_responses", stdout=io.StringIO())

    shortcodes = sorted(CannedResponse.objects.filter(tenant=demo).values_list("shortcode", flat=True))
    assert shortcodes == ["address", "book", "hyaluronic", "price", "recovery", "thanks", "thermage"]
    assert CannedResponse.objects.get(tenant=demo, shortcode="price").text == "本院价格透明，面诊后报价"
    # and a customer's question finds a template by its keywords
    matches = canned_responses_matching(tenant_id=demo.id, text="热玛吉多少钱？")
    assert [r.shortcode for r in matches] == ["price", "thermage"]
