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


def _schema(document, ref_or_schema):
    ref = ref_or_schema.get("$ref")
    return document["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else ref_or_schema


def test_health_and_the_stats_overview_are_typed_as_api_md_fixes_them(document):
    def body(path, status):
        content = document["paths"][path]["get"]["responses"][status]["content"]
        return _schema(document, content["application/json"]["schema"])

    health = body("/api/v1/health", "200")
    assert set(health["required"]) == {"status", "checks"}
    checks = _schema(document, health["properties"]["checks"])
    assert set(checks["required"]) == {"database", "redis", "broker", "workers"}
    assert "failing" in body("/api/v1/health", "503")["required"]
    overview = body("/api/v1/stats/overview", "200")
    api_md = {"customers", "conversations", "one_time_resolution_rate", "first_response", "handle_time"}
    api_md |= {"consultants", "bot", "hot_words", "busy_hours", "channels", "csat", "as_of"}
    assert api_md <= set(overview["required"])
    consultant = _schema(document, overview["properties"]["consultants"]["items"])
    assert set(consultant["required"]) == {
        "id", "name", "conversations", "first_response_avg_s", "handle_time_avg_s", "csat_avg"
    }  # fmt: skip


def test_each_operation_lists_only_the_errors_it_can_answer(document):
    paths = document["paths"]

    def errors(path, method):
        return {code for code in paths[path][method]["responses"] if code >= "400"}

    # no credentials read, no id, no input: only a dependency down (and liveness not even that)
    assert errors("/api/v1/health", "get") == {"503"}
    assert errors("/api/v1/health/live", "get") == set()
    # a list without parameters: auth and throttling (API keys), no 400/404/405
    assert errors("/api/v1/bots", "get") == {"401", "403", "429", "503"}
    # an id in the path: 404 (and a body: 400, 409, 413, 415)
    conversation = "/api/v1/conversations/{conversation_id}/summary"
    assert "404" in errors(conversation, "get") and not {"409", "413", "415"} & errors(conversation, "get")
    assert {"400", "404", "409", "413", "415"} <= errors("/api/v1/bots/{bot_id}/rotate", "post")
    assert not [(p, m) for p, m, op in _operations(document) if "405" in op["responses"]]


def test_every_from_to_filter_is_a_local_day_of_the_tenant(document):
    # API.md: date filters (`from`/`to`) on every API are dates in the tenant's time zone
    filters = [
        (path, method, parameter)
        for path, method, op in _operations(document)
        for parameter in op.get("parameters", [])
        if parameter["in"] == "query" and parameter["name"] in ("from", "to")
    ]
    assert {path for path, _, _ in filters} >= {
        "/api/v1/admin/llm-usage", "/api/v1/blacklist/interceptions", "/api/v1/stats/overview",
        "/api/v1/stats/timeseries",
    }  # fmt: skip
    for path, _method, parameter in filters:
        assert parameter["schema"].get("format") == "date", (path, parameter["name"])
        assert "tenant time zone" in parameter.get("description", ""), (path, parameter["name"])
