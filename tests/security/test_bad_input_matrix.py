"""Bad input never yields a 5xx: a matrix generated from the route table and the spec.

For every route under /v1 (present and future; the parameters are computed from an app
built at collection time): malformed, mistyped, oversized, deeply nested and unknown-field
bodies; malformed path segments; wrongly typed query parameters. Each answer must be the
documented 4xx in the common error shape ``{"error": {"code", "message", "details",
"request_id"}}`` with the X-Request-ID echoed. Requests are signed in as the route's
policy requires, so what is proved is the body handling, not the 401; and separately,
anonymous callers get the 401 before any body validation.
"""
from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from tests.security.conftest import BODY_METHODS, Route, collected_api, resolve

pytestmark = pytest.mark.security

_ids = itertools.count(1)

# Cases a domain bug makes fail today: {(kind, "METHOD /rule"): reason}. Each becomes a strict
# xfail, so the case stays visible and flips to a failure (remove the entry) once fixed.
KNOWN_BUGS: dict[tuple[str, str], str] = {}

# Values of the wrong JSON type for a declared field type.
WRONG_TYPE = {
    "string": 12345,
    "integer": "twelve",
    "number": "twelve",
    "boolean": {"not": "a boolean"},
    "array": "not-a-list",
    "object": "not-an-object",
}
MALFORMED_SEGMENTS = {
    "not an id": "not-an-id",
    "huge": "9" * 5000,
    "unicode": "\u00fcn\u00efc\u00f8d\u00e9-\u2603-\U0001f600",
    "dot-dot": "../../etc/passwd",
    "encoded dot-dot": "..%2F..%2Fetc%2Fpasswd",
    "nul": "%00",
}
# Client-chosen names (string converters): these two are legitimate names, the rest are not.
PLAUSIBLE_NAMES = {"not an id", "unicode"}


def _case(kind: str, route: Route) -> Any:
    reason = KNOWN_BUGS.get((kind, route.label))
    marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
    return pytest.param(route, id=route.label, marks=marks)


def _body_routes(*, with_schema: bool = False) -> list[Route]:
    routes, spec = collected_api()
    return [r for r in routes if r.rule.startswith("/v1/") and (r.method in BODY_METHODS or r.body_schema(spec))
            and not _accepts_any_body(r) and (not with_schema or r.body_schema(spec))]


def _accepts_any_body(route: Route) -> bool:
    """Raw-body views (uploads) are exempt from the JSON guard by design."""
    documented = ((route.operation or {}).get("requestBody") or {}).get("content") or {"application/json": {}}
    return route.accepts_any_body or "application/json" not in documented


def _body_cases(kind: str, *, with_schema: bool = False) -> list[Any]:
    return [_case(kind, r) for r in _body_routes(with_schema=with_schema)]


def _path_cases() -> list[Any]:
    routes, _ = collected_api()
    return [_case("path", r) for r in routes if r.rule.startswith("/v1/") and r.converters]


def _query_cases() -> list[Any]:
    routes, spec = collected_api()
    return [_case("query", r) for r in routes if r.query_parameters(spec)]


def _protected_cases() -> list[Any]:
    routes, _ = collected_api()
    return [_case("anonymous", r) for r in routes if r.rule.startswith("/v1/") and r.needs_sign_in]


@pytest.fixture
def call(app, client, generous_limits, credentials_for):
    """Send one request as a caller the route admits; return (response, request id sent)."""

    def send(route: Route, *, path: str | None = None, signed_in: bool = True, **kwargs: Any):
        request_id = f"sec-matrix-{next(_ids)}"
        headers = {"X-Request-ID": request_id, **(credentials_for(route.policy) if signed_in else {}),
                   **kwargs.pop("headers", {})}
        response = client.open(path or route.path(), method=route.method, headers=headers, **kwargs)
        return response, request_id

    return send


def assert_error(response: Any, request_id: str, statuses: set[int], *, where: str) -> dict[str, Any]:
    """The answer is one of ``statuses``, in the common error shape, echoing the request ID."""
    assert response.status_code in statuses, f"{where}: {response.status_code} {response.get_data(as_text=True)[:500]}"
    body = response.get_json(silent=True)
    assert isinstance(body, dict) and set(body) == {"error"}, f"{where}: not the error shape: {body!r}"
    error = body["error"]
    assert set(error) == {"code", "message", "details", "request_id"}, f"{where}: {error!r}"
    assert isinstance(error["code"], str) and error["code"] and isinstance(error["message"], str), where
    assert isinstance(error["details"], dict), where
    assert error["request_id"] == request_id == response.headers.get("X-Request-ID"), where
    return error


def _mentions(error: dict[str, Any], name: str) -> bool:
    return name in json.dumps(error["details"])


# ---------------------------------------------------------------- bodies


@pytest.mark.parametrize("route", _body_cases("malformed"))
def test_body_route_malformed_json_answers_400(route, call):
    response, rid = call(route, data=b'{"email": "a@example.test", ', content_type="application/json")
    assert_error(response, rid, {400}, where=route.label)


@pytest.mark.parametrize("route", _body_cases("content-type"))
def test_body_route_wrong_content_type_answers_415(route, call):
    for content_type, data in (("text/plain", b"email=a@example.test"),
                               ("application/x-www-form-urlencoded", b"email=a%40example.test"),
                               ("application/xml", b"<email>a@example.test</email>")):
        response, rid = call(route, data=data, content_type=content_type)
        assert_error(response, rid, {415}, where=f"{route.label} as {content_type}")


@pytest.mark.parametrize("route", _body_cases("array", with_schema=True))
def test_body_route_json_array_answers_422(route, call):
    for payload in ([], [{"a": 1}], "a string", 42, None):
        response, rid = call(route, data=json.dumps(payload), content_type="application/json")
        assert_error(response, rid, {422}, where=f"{route.label} with {payload!r}")


@pytest.mark.parametrize("route", _body_cases("bodyless-array"))
def test_body_route_any_json_value_never_answers_5xx(route, call):
    for payload in ([], [{"a": 1}], "a string", 42, None, {"zz_unknown": True}):
        response, rid = call(route, data=json.dumps(payload), content_type="application/json")
        assert response.status_code < 500, f"{route.label} with {payload!r}: {response.status_code}"
        if response.status_code >= 400:
            assert_error(response, rid, {response.status_code}, where=f"{route.label} with {payload!r}")


@pytest.mark.parametrize("route", _body_cases("nested"))
def test_body_route_deeply_nested_json_answers_400(route, call, app):
    limit = app.config["MAX_JSON_DEPTH"]
    for depth in (limit + 1, 100_000):
        nested = '{"a": ' * depth + "1" + "}" * depth
        for data in (nested, "[" * depth + "]" * depth):
            response, rid = call(route, data=data, content_type="application/json")
            assert_error(response, rid, {400}, where=f"{route.label} at depth {depth}")


@pytest.mark.parametrize("route", _body_cases("oversized"))
def test_body_route_oversized_body_answers_413(route, call, app):
    size = app.config["MAX_CONTENT_LENGTH"] + 1
    data = b'{"email": "' + b"a" * (size - 12) + b'"}'
    assert len(data) > app.config["MAX_CONTENT_LENGTH"]
    response, rid = call(route, data=data, content_type="application/json")
    assert_error(response, rid, {413}, where=route.label)


@pytest.mark.parametrize("route", _body_cases("unknown-field", with_schema=True))
def test_body_route_unknown_field_answers_422_naming_it(route, call):
    response, rid = call(route, json={"zz_unknown_field": "x"})
    error = assert_error(response, rid, {422}, where=route.label)
    assert _mentions(error, "zz_unknown_field"), f"{route.label}: {error}"


@pytest.mark.parametrize("route", _body_cases("wrong-type", with_schema=True))
def test_body_route_wrongly_typed_field_answers_422_naming_it(route, call):
    _, spec = collected_api()
    properties = route.body_schema(spec).get("properties", {})
    for name, prop in properties.items():
        prop = resolve(spec, prop)
        if prop.get("readOnly") or prop.get("type") not in WRONG_TYPE:
            continue  # untyped (polymorphic) fields accept several shapes by design
        response, rid = call(route, json={name: WRONG_TYPE[prop["type"]]})
        error = assert_error(response, rid, {422}, where=f"{route.label} field {name}")
        assert _mentions(error, name), f"{route.label} field {name}: {error}"


@pytest.mark.parametrize("route", _body_cases("unstorable-text", with_schema=True))
def test_body_route_nul_or_lone_surrogate_in_any_string_answers_422(route, call):
    """Text PostgreSQL cannot store (U+0000, unpaired surrogates) is refused before any view."""
    _, spec = collected_api()
    properties = route.body_schema(spec).get("properties", {})
    strings = [n for n, p in properties.items() if resolve(spec, p).get("type") == "string"] or ["zz_unknown"]
    payloads = [{name: bad} for name in strings for bad in ("before\u0000after", "\ud800", "x\udfff")]
    payloads += [{"a\u0000b": "x"}, {"\udc00": "x"}, {"x": [{"y": "\u0000"}]}]
    for payload in payloads:
        response, rid = call(route, data=json.dumps(payload), content_type="application/json")
        error = assert_error(response, rid, {422}, where=f"{route.label} with {payload!r}")
        assert error["code"] == "invalid_text", f"{route.label} with {payload!r}: {error}"


@pytest.mark.parametrize("route", _body_cases("non-finite"))
def test_body_route_nan_infinity_or_overflowing_number_answers_400(route, call):
    """Not JSON (RFC 8259), and PostgreSQL's JSONB refuses them: 400 before any view."""
    for literal in ("NaN", "Infinity", "-Infinity", "1e999", "-1e999"):
        response, rid = call(route, data=f'{{"a": {literal}, "b": [{{"c": {literal}}}]}}',
                             content_type="application/json")
        assert_error(response, rid, {400}, where=f"{route.label} with {literal}")


@pytest.mark.parametrize("route", _body_cases("undecodable"))
def test_body_route_undecodable_json_answers_400(route, call):
    for what, data in (("invalid UTF-8", b'{"a": "\xff\xfe"}'), ("5000-digit integer", b'{"a": ' + b"9" * 5000 + b"}"),
                       ("trailing garbage", b'{"a": 1} {"b": 2}'), ("truncated", b"{"),
                       ("single quotes", b"{'a': 1}")):
        response, rid = call(route, data=data, content_type="application/json")
        assert_error(response, rid, {400}, where=f"{route.label} with {what}")


# ---------------------------------------------------------------- path and query


@pytest.mark.parametrize("route", _path_cases())
def test_path_route_malformed_segment_answers_404_or_422(route, call):
    for what, segment in MALFORMED_SEGMENTS.items():
        values = {name: segment for _, _, name in route.converters}
        kwargs = {"json": {}} if route.method in BODY_METHODS else {}
        response, rid = call(route, path=route.path(**values), **kwargs)
        where = f"{route.label} with {what} id"
        named = all(converter in {"default", "string"} for converter, _, _ in route.converters)
        if named and what in PLAUSIBLE_NAMES:
            assert response.status_code < 500, f"{where}: {response.status_code}"
            if response.status_code >= 400:
                assert_error(response, rid, {response.status_code}, where=where)
            continue
        assert_error(response, rid, {404, 422}, where=where)


@pytest.mark.parametrize("route", _query_cases())
def test_query_route_wrongly_typed_parameter_answers_422(route, call):
    _, spec = collected_api()
    for param in route.query_parameters(spec):
        schema = resolve(spec, param.get("schema", {}))
        wrong = _wrong_query_value(schema)
        if wrong is None:
            # A free-form string: any value is well typed, but none may crash the route.
            response, rid = call(route, query_string={param["name"]: "\u2603" * 300 + "'\"%00"})
            assert response.status_code < 500, f"{route.label} ?{param['name']}=garbage: {response.status_code}"
            if response.status_code >= 400:
                assert_error(response, rid, {response.status_code}, where=f"{route.label} ?{param['name']}")
            continue
        response, rid = call(route, query_string={param["name"]: wrong})
        error = assert_error(response, rid, {400, 422}, where=f"{route.label} ?{param['name']}={wrong}")
        assert _mentions(error, param["name"]) or error["code"] != "validation_failed", error
        if schema.get("type") in {"integer", "number"}:  # well typed but extreme: any answer but a 5xx
            for extreme in ("0", "-1", "9" * 40, "-" + "9" * 40, "1e308", "0x10", ""):
                response, rid = call(route, query_string={param["name"]: extreme})
                where = f"{route.label} ?{param['name']}={extreme[:12]}"
                assert response.status_code < 500, f"{where}: {response.status_code}"
                if response.status_code >= 400:  # a well-typed value may reach the lookup of a random path id
                    assert_error(response, rid, {400, 422} | ({404} if route.converters else set()), where=where)
    response, rid = call(route, query_string={route.query_parameters(spec)[0]["name"]: "a\x00b"})
    assert assert_error(response, rid, {422}, where=f"{route.label} NUL in query")["code"] == "invalid_text"


def _wrong_query_value(schema: dict[str, Any]) -> str | None:
    if "enum" in schema:
        return "not-one-of-the-choices"
    kind, fmt = schema.get("type"), schema.get("format")
    if kind in {"integer", "number"}:
        return "twelve"
    if kind == "boolean":
        return "perhaps"
    if fmt in {"uuid", "date-time", "date", "email"}:
        return f"not-a-{fmt}"
    if "maxLength" in schema:
        return "x" * (schema["maxLength"] + 1)
    return None


# ---------------------------------------------------------------- anonymous callers


@pytest.mark.parametrize("route", _protected_cases())
def test_protected_route_anonymous_answers_401_before_body_validation(route, call):
    kwargs = {"json": {"zz_unknown_field": 12345}} if route.method in BODY_METHODS else {}
    response, rid = call(route, signed_in=False, **kwargs)
    error = assert_error(response, rid, {401}, where=route.label)
    assert not _mentions(error, "zz_unknown_field"), f"{route.label} validated the body before auth: {error}"
