"""Fixtures for the bad-input tests: the live route table, signed-in callers, generous limits.

Everything is derived from the app under test (its url_map, the access policy each view
method declares, its OpenAPI spec), so routes added later are covered without edits.
"""
from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from backend.auth.passwords import hash_password
from backend.common.access import AccessPolicy, policy_of
from tests.auth.conftest import auth_headers, make_user  # noqa: F401 - the accounts engineer's fixtures

API_KEY = "security-suite-server-key-0123456789abcdef"
GENEROUS_LIMIT = "100000 per minute"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CONVERTER = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


@dataclass(frozen=True)
class Route:
    """One (rule, method) of the API, as the app serves and documents it."""

    rule: str  # werkzeug rule: /v1/campaigns/<uuid:campaign_id>
    method: str
    endpoint: str
    policy: AccessPolicy | None
    converters: tuple[tuple[str, str, str], ...]  # (converter, arguments, name)
    operation: dict[str, Any] | None  # the OpenAPI operation, when documented
    accepts_any_body: bool = False  # marked with backend.common.requests.accepts_any_body (raw uploads)

    @property
    def spec_path(self) -> str:
        return _CONVERTER.sub(lambda m: "{" + m.group(3) + "}", self.rule)

    @property
    def label(self) -> str:
        return f"{self.method} {self.rule}"

    @property
    def needs_sign_in(self) -> bool:
        return self.policy is not None and self.policy.kind != "public"

    def path(self, **values: str) -> str:
        """The rule with each parameter filled: ``values[name]``, else a valid placeholder."""
        def fill(match: re.Match) -> str:
            converter, args, name = match.group(1) or "default", match.group(2) or "", match.group(3)
            if name in values:
                return values[name]
            if converter == "any":
                return args.split(",")[0].strip().strip("'\"")
            if converter == "int":
                return "1"
            return str(uuid.uuid4()) if converter == "uuid" else "placeholder"
        return _CONVERTER.sub(fill, self.rule)

    def body_schema(self, spec: dict[str, Any]) -> dict[str, Any] | None:
        """The resolved JSON schema of the documented request body, if any."""
        content = ((self.operation or {}).get("requestBody") or {}).get("content") or {}
        schema = (content.get("application/json") or {}).get("schema")
        return resolve(spec, schema) if schema else None

    def query_parameters(self, spec: dict[str, Any]) -> list[dict[str, Any]]:
        params = [resolve(spec, p) for p in (self.operation or {}).get("parameters", [])]
        return [p for p in params if p.get("in") == "query"]


def resolve(spec: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s until a concrete node."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def api_routes(app: Flask, spec: dict[str, Any]) -> list[Route]:
    """Every (rule, method) under /v1 or in the spec, with its declared policy and OpenAPI operation."""
    routes = []
    documented = set(spec.get("paths", {}))
    for rule in app.url_map.iter_rules():
        spec_path = _CONVERTER.sub(lambda m: "{" + m.group(3) + "}", rule.rule)
        if not rule.rule.startswith("/v1/") and spec_path not in documented:
            continue
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        converters = tuple((m.group(1) or "default", m.group(2) or "", m.group(3))
                           for m in _CONVERTER.finditer(rule.rule))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            target = getattr(view_class, method.lower(), None) if view_class else view
            operation = spec.get("paths", {}).get(spec_path, {}).get(method.lower())
            raw = bool(getattr(view_class or view, "accepts_any_body", False))
            routes.append(Route(rule.rule, method, rule.endpoint, policy_of(target) if target else None,
                                converters, operation, raw))
    return sorted(routes, key=lambda r: (r.rule, r.method))


@functools.cache
def collected_api() -> tuple[tuple[Route, ...], dict[str, Any]]:
    """The route table and spec of an app built from today's code, for parametrizing at collection.

    Building an app connects to nothing (settings only), so placeholder URLs suffice; the
    requests themselves go to the session's ``app`` fixture, built from the same code.
    """
    from backend.app import create_app
    from tests.conftest import app_settings

    app = create_app(app_settings("postgresql://postgres@127.0.0.1:1/collection-only", "redis://127.0.0.1:1/0"))
    spec = app.extensions["groundwork.api"].spec.to_dict()
    return tuple(api_routes(app, spec)), spec


@pytest.fixture(scope="session")
def password_hash() -> str:
    """One Argon2id hash shared by the suite's users (hashing per user would dominate the run)."""
    return hash_password("security suite passphrase")


@pytest.fixture
def generous_limits(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """High general rate limits and a known server key for this test; auth lockouts stay as configured.

    Each app has its own limiter that reads RATELIMIT_DEFAULT per request.
    """
    monkeypatch.setitem(app.config, "RATELIMIT_DEFAULT", GENEROUS_LIMIT)
    monkeypatch.setitem(app.config, "RATELIMIT_PER_USER", GENEROUS_LIMIT)
    monkeypatch.setitem(app.config, "SERVER_API_KEYS", [API_KEY])


@pytest.fixture
def credentials_for(make_user: Callable[..., Any], auth_headers: Callable[..., dict[str, str]],  # noqa: F811
                    password_hash: str, db_session: Any) -> Callable[..., dict[str, str]]:
    """Headers that satisfy a route's policy, from a freshly created caller each time.

    ``user`` routes: a new active, verified user (in the first role the route names) with
    a new session; ``server`` routes: the server API key; public routes: nothing. With
    ``caller`` ("user" or "staff") every route gets that caller's bearer token instead: a
    plain user, or a staff member in the first role the route names (admin when none).
    """

    def credentials(policy: AccessPolicy | None, *, caller: str | None = None) -> dict[str, str]:
        if caller is not None:  # a bearer token whatever the route asks: "user", or "staff" in the route's role
            role = "user" if caller == "user" else (policy.roles[0] if policy and policy.roles else "admin")
        elif policy is None or policy.kind == "public":
            return {}
        elif policy.kind == "server":
            return {"X-API-Key": API_KEY}
        else:
            role = policy.roles[0] if policy.roles else "user"
        user = make_user(password=None, role=role)
        user.password_hash = password_hash
        db_session.commit()
        return auth_headers(user)

    return credentials


@pytest.fixture
def spec(app: Flask) -> dict[str, Any]:
    """The OpenAPI document the app serves at /openapi.json right now."""
    return app.extensions["groundwork.api"].spec.to_dict()
