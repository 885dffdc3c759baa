"""flask-jwt-extended as the token library: its decorators see our keys, revocation, roles and error shape.

The API's routes go through ``@require`` (the principal loader), which uses the same
library calls with a memo in front; these tests drive the library's own entry point
(``verify_jwt_in_request``, what ``@jwt_required`` runs) through the app's error handlers.
The two ``xfail(strict=True)`` tests show what the library does not do, and why those
parts stay ours (README, "Security model").
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from flask_jwt_extended import decode_token, get_jwt, get_jwt_identity, verify_jwt_in_request

from backend.auth.sessions import end_all_sessions, end_session
from backend.auth.tokens import issue_access_token
from backend.common.db import utcnow


def _guarded(app, headers):
    """(status, error code or identity) of a ``@jwt_required`` view called with ``headers``."""
    with app.test_request_context("/v1/anything", headers=headers):
        try:
            verify_jwt_in_request()
        except Exception as exc:  # noqa: BLE001 - the app's handlers decide the answer
            answer = app.make_response(app.handle_user_exception(exc))
            return answer.status_code, answer.get_json()["error"]["code"]
        return 200, get_jwt_identity()


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def signed_in(app, make_user, auth_headers):
    user = make_user(role="marketer")
    headers = auth_headers(user)
    return user, headers, auth_headers.tokens


def test_library_accepts_our_token_with_claims_and_kid(app, db_session, signed_in):
    user, headers, _ = signed_in
    assert _guarded(app, headers) == (200, str(user.id))
    with app.test_request_context("/", headers=headers):
        verify_jwt_in_request()
        assert get_jwt()["role"] == "marketer" and get_jwt()["typ"] == "access"
    header = jwt.get_unverified_header(headers["Authorization"][7:])
    assert header == {"alg": "EdDSA", "kid": app.extensions["groundwork.jwt_keys"][0].kid, "typ": "at+jwt"}


def test_library_blocklist_loader_refuses_a_signed_out_session_with_its_reason(app, db_session, signed_in):
    user, headers, tokens = signed_in
    end_session(user_id=user.id, session_id=uuid.UUID(tokens["session_id"]))
    assert _guarded(app, headers) == (401, "session_revoked")


def test_library_blocklist_loader_sees_sign_out_everywhere(app, db_session, signed_in):
    user, headers, _ = signed_in
    end_all_sessions(user=user, reason="password_changed")
    assert _guarded(app, headers) == (401, "password_changed")


def test_library_answers_expired_missing_and_foreign_tokens_in_the_error_shape(app, db_session, signed_in):
    user, _, tokens = signed_in
    expired = issue_access_token(user_id=user.id, session_id=uuid.UUID(tokens["session_id"]), role="user",
                                 token_version=0, issued_at=utcnow() - timedelta(hours=1), jti=uuid.uuid4())
    assert _guarded(app, _bearer(expired)) == (401, "token_expired")
    assert _guarded(app, {}) == (401, "not_authenticated")
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    kid = app.extensions["groundwork.jwt_keys"][0].kid
    foreign = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": kid})
    hs256 = jwt.encode(claims, "groundwork-guessable-shared-secret-32b", algorithm="HS256", headers={"kid": kid})
    unknown_kid = jwt.encode(claims, ed25519.Ed25519PrivateKey.generate(), algorithm="EdDSA",
                             headers={"kid": "theirs", "jku": "https://evil.example/jwks.json"})
    for token in (foreign, hs256, unknown_kid, "garbage"):
        assert _guarded(app, _bearer(token)) == (401, "token_invalid"), token


@pytest.mark.xfail(strict=True, reason="flask-jwt-extended requires only `sub`: our required-claims check stays")
def test_library_refuses_a_token_without_our_claims(app, db_session, signed_in):
    user, _, _ = signed_in
    key = app.extensions["groundwork.jwt_keys"][0]
    now = int(utcnow().timestamp())
    bare = jwt.encode({"sub": str(user.id), "iss": app.config["JWT_ISSUER"], "aud": app.config["JWT_AUDIENCE"],
                       "iat": now, "exp": now + 60}, key.private, algorithm=key.alg, headers={"kid": key.kid})
    with app.test_request_context("/"), pytest.raises(Exception):  # noqa: B017, PT011
        decode_token(bare)  # the library's decode: accepted without sid, ver, role, typ, jti


@pytest.mark.xfail(strict=True, reason="flask-jwt-extended verifies the signature on every call: our memo stays")
def test_library_remembers_a_verified_token(app, db_session, signed_in, monkeypatch):
    from backend.extensions import jwt_manager

    _, headers, _ = signed_in
    token, calls = headers["Authorization"][7:], []
    loader = jwt_manager._decode_key_callback
    monkeypatch.setattr(jwt_manager, "_decode_key_callback", lambda *a: calls.append(1) or loader(*a))
    with app.test_request_context("/"):
        decode_token(token)
        decode_token(token)
    assert len(calls) == 1  # it is 2: each use parses the token and checks its Ed25519 signature again
