"""Photos and files on POST /api/v1/conversations/<id>/messages (multipart), customers and consultants."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from anmei.conversations.models import Conversation, Message
from tests.conftest import client_for, make_user
from tests.helpers import assert_error
from tests.test_media import PNG, _stored_files

pytestmark = pytest.mark.usefixtures("fast_hashing")

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def conversation(cathy):
    return Conversation.objects.create(tenant=cathy.tenant, customer=cathy, channel="web")


def upload(client, conversation_id: int, data: bytes, kind: str = "image", name: str = "x.jpg", **fields):
    body = {"type": kind, "file": SimpleUploadedFile(name, data, content_type="application/octet-stream"), **fields}
    return client.post(f"/api/v1/conversations/{conversation_id}/messages", body, format="multipart")


@pytest.mark.django_db
def test_customer_photo_is_stored_under_the_tenant_and_shown_to_the_consultant(
    conversation, cathy, carol, media_dir, client
):
    response = upload(client_for(cathy), conversation.id, PNG, name="face.exe", content="左脸的照片")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["type"], body["sender_type"], body["content"]) == ("image", "customer", "左脸的照片")
    media = Message.objects.get().payload["media"]
    assert (media["mime"], media["ext"], media["size"]) == ("image/png", "png", len(PNG))
    assert media["key"].startswith(f"t{cathy.tenant_id}/image/")
    assert len(_stored_files(media_dir)) == 1 and _stored_files(media_dir)[0].read_bytes() != PNG  # encrypted
    played = client.get(body["media_url"])
    assert (played.status_code, played["Content-Type"], played.content) == (200, "image/png", PNG)
    listed = client_for(carol).get(f"/api/v1/conversations/{conversation.id}/messages").json()["results"]
    assert [(m["type"], m["media_url"] is not None) for m in listed] == [("image", True)]


@pytest.mark.django_db
def test_consultant_attaches_a_file_to_a_conversation_they_hold(conversation, carol, cathy, media_dir, client):
    conversation.status, conversation.consultant = "active", carol
    conversation.save()

    response = upload(client_for(carol), conversation.id, PDF, kind="file", name="价目表.pdf", content="价目表")

    assert response.status_code == 201, response.content
    assert (response.json()["sender_type"], response.json()["type"]) == ("consultant", "file")
    assert client.get(response.json()["media_url"]).content == PDF
    customer_view = client_for(cathy).get(f"/api/v1/conversations/{conversation.id}/messages").json()["results"]
    assert [m["content"] for m in customer_view] == ["价目表"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data, kind, status, code",
    [
        (b"just some text, not a picture\n" * 3, "image", 415, "media_type_not_allowed"),
        (PDF, "image", 415, "media_type_not_allowed"),
        (PNG, "voice", 415, "media_type_not_allowed"),
    ],
)
def test_content_that_is_not_the_declared_kind_is_refused_and_nothing_stored(
    conversation, cathy, media_dir, data, kind, status, code
):
    assert_error(upload(client_for(cathy), conversation.id, data, kind=kind), status, code)
    assert Message.objects.count() == 0 and _stored_files(media_dir) == []


@pytest.mark.django_db
def test_too_large_is_413_and_nothing_stored(conversation, cathy, media_dir, settings):
    settings.MEDIA_MAX_BYTES = {**settings.MEDIA_MAX_BYTES, "image": 64}
    assert_error(upload(client_for(cathy), conversation.id, PNG + b"\0" * 100), 413, "media_too_large")
    assert Message.objects.count() == 0 and _stored_files(media_dir) == []


@pytest.mark.django_db
def test_bad_forms_are_400_and_nothing_stored(conversation, cathy, media_dir):
    client = client_for(cathy)
    url = f"/api/v1/conversations/{conversation.id}/messages"
    assert_error(client.post(url, {"type": "image"}, format="multipart"), 400, "validation_error")
    assert_error(client.post(url, {"type": "text"}, format="json"), 400, "validation_error")
    with_file = {"type": "text", "content": "hi", "file": io.BytesIO(PNG)}
    assert_error(client.post(url, with_file, format="multipart"), 400, "validation_error")
    assert Message.objects.count() == 0 and _stored_files(media_dir) == []


@pytest.mark.django_db
def test_refused_sends_leave_no_stored_object(conversation, cathy, carol, tenant_b, media_dir):
    # a consultant who has not claimed it, another tenant's customer, an ended conversation
    assert_error(upload(client_for(carol), conversation.id, PNG), 409, "conversation_not_claimed")
    assert_error(upload(client_for(make_user(tenant_b, "eve")), conversation.id, PNG), 404)
    Conversation.objects.filter(pk=conversation.pk).update(status="ended")
    assert_error(upload(client_for(cathy), conversation.id, PNG), 409, "conversation_ended")
    assert Message.objects.count() == 0 and _stored_files(media_dir) == []
