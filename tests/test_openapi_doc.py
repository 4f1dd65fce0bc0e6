"""The OpenAPI document as a reader uses it: areas as tags, a description everywhere, honest errors."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


@pytest.fixture
def document(anon):
    response = anon.get("/api/schema/?format=json")
    assert response.status_code == 200
    return response.json()


def _operations(document):
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            yield path, method, op


def test_operations_are_tagged_by_area_and_all_described(document):
    operations = list(_operations(document))
    tags = {tag for _, _, op in operations for tag in op["tags"]}
    assert {"auth", "tenants", "conversations", "bots", "blacklist", "mcp", "statistics", "health"} <= tags
    assert "v1" not in tags
    assert [(p, m) for p, m, op in operations if not op.get("description")] == []
    assert document["paths"]["/api/v1/blacklist/interceptions"]["get"]["tags"] == ["blacklist"]


def test_reads_do_not_promise_body_errors(document):
    bots = document["paths"]["/api/v1/bots"]
    assert not {"409", "413", "415"} & set(bots["get"]["responses"])
    assert {"400", "413", "415"} <= set(bots["post"]["responses"])
