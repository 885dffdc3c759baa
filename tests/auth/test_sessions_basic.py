"""Session issuance and the principal loader, through the token the loader checks."""
from __future__ import annotations

import jwt

from backend.auth.principal import principal_from_token
from backend.auth.sessions import end_session
from backend.common.errors import Unauthorized


def test_start_session_token_carries_claims_and_loads_principal(app, db_session, make_user, auth_headers):
    user = make_user(role="moderator")
    headers = auth_headers(user)
    body = auth_headers.tokens
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == str(user.id) and claims["role"] == "moderator" and claims["typ"] == "access"
    assert body["token_type"] == "Bearer" and body["user"]["email"] == user.email
    principal = principal_from_token(headers["Authorization"].split()[1])
    assert principal.user_id == user.id and principal.role == "moderator"


def test_principal_after_session_ended_is_refused_with_reason(app, db_session, make_user, auth_headers):
    user = make_user()
    token = auth_headers(user)["Authorization"].split()[1]
    principal_from_token(token)
    end_session(user_id=user.id, session_id=principal_from_token(token).session_id)
    try:
        principal_from_token(token)
    except Unauthorized as exc:
        assert exc.code == "session_revoked"
    else:
        raise AssertionError("a revoked session was accepted")
