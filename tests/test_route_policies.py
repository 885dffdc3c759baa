"""Authorization matrix generated from the app's route table (all domains, present and future).

- every /v1 view method declares its access policy (@public / @require / @server_key);
- every protected route answers 401 in the error shape to a missing, expired, refresh,
  foreign-key-signed or alg=none token;
- every route naming an object in its path answers 404 to a signed-in user for a random
  UUID (not 403, not 500, and nothing changes);
- no answer of the account flows carries password hashes, token digests or another
  user's email.
"""
from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask import Flask
from sqlalchemy import select

from backend.auth.models import OneTimeToken, RefreshToken, User
from backend.auth.passwords import hash_password
from backend.auth.sessions import start_session
from backend.auth.tokens import issue_access_token
from backend.common.access import AccessPolicy, policy_of
from backend.common.db import utcnow
from backend.common.ratelimit import limiter_of
from backend.extensions import db

PASSWORD = "route policy passphrase"

BODY_METHODS = {"POST", "PUT", "PATCH"}
_CONVERTER = re.compile(r"<(?:(\w+)(?:\(([^)]*)\))?:)?(\w+)>")


@dataclass(frozen=True)
class Route:
    rule: str
    method: str
    policy: AccessPolicy | None
    converters: tuple[str, ...]

    def path(self, value: str) -> str:
        """The rule with every parameter filled (``value`` for ids, the first choice for ``any``)."""
        def fill(match: re.Match) -> str:
            converter, args = match.group(1) or "default", match.group(2) or ""
            if converter == "any":
                return args.split(",")[0].strip().strip("'\"")
            return "1" if converter == "int" else value
        return _CONVERTER.sub(fill, self.rule)


def api_routes(app: Flask) -> list[Route]:
    """Every (rule, method) under /v1, with the policy its view method declares."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/"):
            continue
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        converters = tuple(m.group(1) or "default" for m in _CONVERTER.finditer(rule.rule))
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            target = getattr(view_class, method.lower(), None) if view_class else view
            routes.append(Route(rule.rule, method, policy_of(target) if target else None, converters))
    return sorted(routes, key=lambda r: (r.rule, r.method))


def _user(email: str, role: str = "user") -> User:
    user = User(email=email, password_hash=hash_password(PASSWORD), email_verified_at=utcnow(), role=role)
    db.session.add(user)
    db.session.commit()
    return user


def _session(user: User) -> dict:
    return start_session(user=user, device_name="matrix", platform="other", ip="127.0.0.1", user_agent=None)


@pytest.fixture
def unlimited(app, monkeypatch):
    """The general per-address limit off: this test walks every route several times."""
    monkeypatch.setattr(limiter_of(app), "enabled", False)


def _call(client, route: Route, path: str, headers: dict[str, str]):
    kwargs = {"headers": headers}
    if route.method in BODY_METHODS:
        kwargs["json"] = {}
    return client.open(path, method=route.method, **kwargs)


def _error_code(answer) -> str | None:
    try:
        return answer.get_json()["error"]["code"]
    except (TypeError, KeyError):
        return None


def test_every_api_route_declares_an_access_policy(app):
    routes = api_routes(app)
    assert len(routes) > 20
    missing = [f"{r.method} {r.rule}" for r in routes if r.policy is None]
    assert missing == [], f"routes without @public/@require/@server_key: {missing}"


def _bad_tokens(app, user, session_id, refresh_token) -> dict[str, str]:
    now = utcnow()
    expired = issue_access_token(user_id=user.id, session_id=session_id, role=user.role, token_version=0,
                                 issued_at=now - timedelta(hours=2), jti=uuid.uuid4())
    claims = jwt.decode(issue_access_token(user_id=user.id, session_id=session_id, role=user.role, token_version=0,
                                           issued_at=now, jti=uuid.uuid4()), options={"verify_signature": False})
    kid = app.extensions["groundwork.jwt_keys"][0].kid
    foreign = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    unsigned = jwt.encode(claims, None, algorithm="none", headers={"kid": kid})
    hs256 = jwt.encode(claims, "groundwork-guessable-shared-secret-32b", algorithm="HS256", headers={"kid": kid})
    return {"no token": "", "expired": expired, "refresh token": refresh_token, "other key": foreign,
            "alg none": unsigned, "alg HS256": hs256}


def test_protected_routes_refuse_bad_tokens_with_401_error_shape(app, client, unlimited):
    user = _user("matrix-admin@example.test", role="admin")
    body = _session(user)
    tokens = _bad_tokens(app, user, uuid.UUID(body["session_id"]), body["refresh_token"])
    failures = []
    for route in api_routes(app):
        if route.policy is None or route.policy.kind == "public":
            continue
        path = route.path(str(uuid.uuid4()))
        for name, token in tokens.items():
            answer = _call(client, route, path, {"Authorization": f"Bearer {token}"} if token else {})
            if answer.status_code != 401 or _error_code(answer) is None:
                failures.append(f"{route.method} {route.rule} with {name}: {answer.status_code} {_error_code(answer)}")
    assert failures == []


def test_object_routes_answer_404_for_random_uuid_to_signed_in_user(app, client, unlimited):
    user = _user("matrix-admin@example.test", role="admin")  # passes every role check: what is left is the lookup
    headers = {"Authorization": f"Bearer {_session(user)['access_token']}"}
    failures = []
    for route in api_routes(app):
        ids = [c for c in route.converters if c != "any"]
        if not ids or (route.method == "PUT" and "uuid" not in ids):
            continue  # PUT on a client-chosen name creates or replaces by design
        answer = _call(client, route, route.path(str(uuid.uuid4())), headers)
        allowed = {404} | ({422} if route.method in BODY_METHODS else set())
        if answer.status_code not in allowed or _error_code(answer) is None:
            failures.append(f"{route.method} {route.rule}: {answer.status_code} {_error_code(answer)}")
    assert failures == []


def _secrets_of(user_ids) -> list[str]:
    found = list(db.session.scalars(select(User.password_hash).where(User.id.in_(user_ids))))
    found += list(db.session.scalars(select(RefreshToken.token_hash)))
    found += list(db.session.scalars(select(OneTimeToken.token_hash)))
    return [s for s in found if s]


def test_account_flow_answers_never_leak_hashes_or_other_users(client, run_jobs):
    other = _user("someone.else@example.test")
    me = _user("me@example.test")
    answers = []
    login = client.post("/v1/auth/login", json={"email": me.email, "password": PASSWORD})
    answers.append(login)
    tokens = login.get_json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    answers += [
        client.get("/v1/me", headers=headers),
        client.patch("/v1/me", headers=headers, json={"display_name": "Me"}),
        client.get("/v1/me/sessions", headers=headers),
        client.get("/v1/me/export", headers=headers),
        client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}),
        client.post("/v1/auth/register", json={"email": other.email, "password": PASSWORD}),
        client.post("/v1/auth/register", json={"email": "new.person@example.test", "password": PASSWORD}),
        client.post("/v1/auth/password-reset/request", json={"email": other.email}),
        client.post("/v1/auth/resend-verification", json={"email": other.email}),
        client.post("/v1/auth/login", json={"email": other.email, "password": "wrong password"}),
        client.post("/v1/me/email", headers=headers, json={"new_email": other.email, "password": PASSWORD}),
        client.get("/.well-known/jwks.json"),
    ]
    run_jobs()
    secrets = _secrets_of([me.id, other.id])
    assert secrets, "the flow should have stored hashes to look for"
    for answer in answers:
        text = json.dumps(answer.get_json()) if answer.is_json else answer.get_data(as_text=True)
        assert "$argon2" not in text and "password_hash" not in text and "token_hash" not in text
        assert not any(secret in text for secret in secrets)
        assert other.email not in text, text
