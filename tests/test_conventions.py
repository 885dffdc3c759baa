"""The API conventions every endpoint shares, proved on a probe API."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import text

from backend.app import create_app
from backend.common.ratelimit import limiter_of
from backend.extensions import db
from tests import probe_api
from tests.conftest import app_settings


@pytest.fixture(scope="module")
def probe_app(database_url, services):
    app = create_app(app_settings(database_url, services.redis_url, MAX_CONTENT_LENGTH=64 * 1024))
    app.extensions["groundwork.api"].register_blueprint(probe_api.blp)
    limited = app.view_functions["probe.Limited"]
    app.view_functions["probe.Limited"] = limiter_of(app).limit("3 per minute")(limited)
    return app


@pytest.fixture
def probe(probe_app, redis_conn):
    with probe_app.app_context():
        engines = db.engines
        engine = engines[None]
        connection = engine.connect()
        outer = connection.begin()
        probe_api.ProbeBase.metadata.create_all(connection)  # rolled back with the test
        engines[None] = connection
        try:
            yield probe_app.test_client()
        finally:
            db.session.remove()
            outer.rollback()
            connection.close()
            engines[None] = engine


def assert_error(response, status, code):
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    assert body["error"]["request_id"] == response.headers["X-Request-ID"]
    return body["error"]


def test_unknown_route_returns_404_in_error_shape(probe):
    assert_error(probe.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_returns_405_with_allow_header(probe):
    response = probe.delete("/v1/probe/notes")
    assert_error(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_malformed_json_returns_400(probe):
    response = probe.post("/v1/probe/notes", data="{not json", content_type="application/json")
    assert_error(response, 400, "bad_request")


def test_wrong_content_type_returns_415(probe):
    response = probe.post("/v1/probe/notes", data="text=hello", content_type="application/x-www-form-urlencoded")
    assert_error(response, 415, "unsupported_media_type")


def test_deeply_nested_json_returns_400_not_500(probe):
    body = "[" * 20_000 + "]" * 20_000
    response = probe.post("/v1/probe/notes", data=body, content_type="application/json")
    assert_error(response, 400, "bad_request")
    shallow_but_over_limit = json.dumps({"text": "x", "n": json.loads("[" * 40 + "]" * 40)})
    assert_error(probe.post("/v1/probe/notes", data=shallow_but_over_limit, content_type="application/json"),
                 400, "bad_request")


def test_oversized_body_returns_413(probe):
    response = probe.post("/v1/probe/notes", json={"text": "x" * (70 * 1024)})
    assert_error(response, 413, "payload_too_large")


def test_unknown_field_returns_422_with_field_details(probe):
    response = probe.post("/v1/probe/notes", json={"text": "hi", "is_admin": True})
    error = assert_error(response, 422, "validation_failed")
    assert error["details"]["fields"] == {"is_admin": ["Unknown field."]}


def test_wrongly_typed_field_returns_422(probe):
    error = assert_error(probe.post("/v1/probe/notes", json={"text": 5}), 422, "validation_failed")
    assert list(error["details"]["fields"]) == ["text"]


def test_domain_error_keeps_its_code(probe):
    assert_error(probe.post("/v1/probe/notes", json={"text": "conflict"}), 409, "note_conflict")


def test_unexpected_exception_returns_500_in_error_shape(probe):
    error = assert_error(probe.post("/v1/probe/notes", json={"text": "boom"}), 500, "internal_error")
    assert "unexpected" not in error["message"]  # internals are not leaked


def test_request_id_is_echoed_or_generated(probe):
    given = probe.get("/v1/probe/notes", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    generated = probe.get("/v1/probe/notes")
    assert len(generated.headers["X-Request-ID"]) == 32
    hostile = probe.get("/v1/probe/notes", headers={"X-Request-ID": "<script>" + "x" * 300})
    assert len(hostile.headers["X-Request-ID"]) == 32


def test_cursor_pagination_walks_every_item_once(probe):
    created = {probe.post("/v1/probe/notes", json={"text": f"n{i}"}).get_json()["id"] for i in range(7)}
    seen, url, pages = [], "/v1/probe/notes?limit=3", 0
    while url:
        body = probe.get(url).get_json()
        seen.extend(item["id"] for item in body["items"])
        url = body["next"] and body["next"].replace("http://localhost", "")
        pages += 1
    assert pages == 3
    assert len(seen) == len(set(seen)) == 7
    assert set(seen) == created


def test_limit_is_capped_and_bad_cursor_rejected(probe):
    body = probe.get("/v1/probe/notes?limit=100000").get_json()
    assert body["next_cursor"] is None
    assert_error(probe.get("/v1/probe/notes?cursor=forged"), 422, "invalid_cursor")
    assert_error(probe.get("/v1/probe/notes?limit=0"), 422, "validation_failed")


def test_etag_and_if_none_match_give_304(probe):
    note = probe.post("/v1/probe/notes", json={"text": "cached"}).get_json()
    first = probe.get(f"/v1/probe/notes/{note['id']}")
    assert first.status_code == 200 and first.headers["ETag"]
    again = probe.get(f"/v1/probe/notes/{note['id']}", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    assert again.get_data() == b""


def test_idempotency_key_replays_same_request(probe):
    headers = {"Idempotency-Key": "create-1"}
    first = probe.post("/v1/probe/notes", json={"text": "once"}, headers=headers)
    second = probe.post("/v1/probe/notes", json={"text": "once"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.get_json() == second.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    count = db.session.execute(text("SELECT count(*) FROM probe_notes WHERE text = 'once'")).scalar()
    assert count == 1


def test_idempotency_key_with_different_body_is_422(probe):
    headers = {"Idempotency-Key": "create-2"}
    probe.post("/v1/probe/notes", json={"text": "first"}, headers=headers)
    assert_error(probe.post("/v1/probe/notes", json={"text": "second"}, headers=headers),
                 422, "idempotency_key_reused")


def test_idempotency_key_is_released_after_a_server_error(probe):
    headers = {"Idempotency-Key": "create-3"}
    assert probe.post("/v1/probe/notes", json={"text": "boom"}, headers=headers).status_code == 500
    retry = probe.post("/v1/probe/notes", json={"text": "boom"}, headers=headers)
    assert retry.status_code == 500 and "Idempotent-Replayed" not in retry.headers


def test_rate_limit_answers_429_with_retry_after_and_ratelimit_headers(probe):
    ok = [probe.get("/v1/probe/limited") for _ in range(3)]
    assert all(r.status_code == 200 for r in ok)
    assert ok[0].headers["RateLimit-Limit"] == "3"
    assert ok[-1].headers["RateLimit-Remaining"] == "0"
    limited = probe.get("/v1/probe/limited")
    assert_error(limited, 429, "rate_limited")
    assert int(limited.headers["Retry-After"]) >= 1
    assert "RateLimit-Reset" in limited.headers


def test_cors_headers_only_for_configured_origins(database_url, services):
    app = create_app(app_settings(database_url, services.redis_url, CORS_ORIGINS=["https://app.example"]))
    client = app.test_client()
    allowed = client.get("/healthz", headers={"Origin": "https://app.example"})
    assert "Access-Control-Allow-Origin" not in allowed.headers  # CORS is for /v1 only
    preflight = client.options("/v1/anything", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
    assert preflight.headers.get("Access-Control-Allow-Origin") == "https://app.example"
    other = client.options("/v1/anything", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_only_valid_tokens_skip_the_general_limit(database_url, services, redis_conn):
    """An unverifiable bearer counts per address like no token (tests/auth/test_rate_limits.py: the rest)."""
    app = create_app(app_settings(database_url, services.redis_url, RATELIMIT_DEFAULT="2 per minute"))
    client = app.test_client()
    anonymous = [client.get("/v1/me") for _ in range(3)]
    assert [r.status_code for r in anonymous] == [401, 401, 429]
    assert anonymous[0].headers["RateLimit-Remaining"] == "1"
    redis_conn.flushdb()
    bearer = {"Authorization": "Bearer not-a-token"}
    assert [client.get("/v1/me", headers=bearer).status_code for _ in range(3)] == [401, 401, 429]


def test_field_errors_one_rule_for_parser_and_policy_failures(client):
    """details.fields is keyed by field name wherever the check ran (schema, query, service policy)."""
    unknown = client.post("/v1/auth/register", json={"email": "a@example.test", "password": "x" * 12, "extra": 1})
    assert unknown.status_code == 422 and unknown.get_json()["error"]["details"]["fields"] == {
        "extra": ["Unknown field."]}
    policy = client.post("/v1/auth/register", json={"email": "a@example.test", "password": "password123"})
    assert policy.status_code == 422 and list(policy.get_json()["error"]["details"]["fields"]) == ["password"]
    query = client.get("/v1/auth/verify-email")
    assert query.status_code == 422 and list(query.get_json()["error"]["details"]["fields"]) == ["token"]


def test_field_errors_nested_fields_use_dotted_paths():
    from backend.common.errors import flatten_field_errors

    nested = {"json": {"variants": {0: {"title": ["Too long."]}, 2: {"body": ["Missing data."]}},
                       "properties": {"color": {"value": ["Not valid."]}}, "name": ["Required."]}}
    assert flatten_field_errors(list(nested.values())) == {
        "variants.0.title": ["Too long."], "variants.2.body": ["Missing data."],
        "properties.color.value": ["Not valid."], "name": ["Required."]}
    assert flatten_field_errors(["Invalid input type."]) == {"_schema": ["Invalid input type."]}
