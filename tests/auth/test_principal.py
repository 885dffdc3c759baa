"""The loader checks live session and user state: effects on the next request, Redis policy."""
from __future__ import annotations

import pytest

from backend.app import create_app
from backend.auth.accounts import suspend_account
from backend.auth.sessions import end_session, start_session
from tests.auth.conftest import PASSWORD
from tests.conftest import app_settings


def _bearer(body):
    return {"Authorization": f"Bearer {body['access_token']}"}


def test_suspension_takes_effect_on_next_request(client, make_user):
    user = make_user()
    body = client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}).get_json()
    assert client.get("/v1/me", headers=_bearer(body)).status_code == 200  # state now cached in Redis
    suspend_account(user_id=user.id, reason="spam")
    answer = client.get("/v1/me", headers=_bearer(body))
    assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "account_suspended"
    refresh = client.post("/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refresh.get_json()["error"]["code"] == "account_suspended"
    login = client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert login.status_code == 403 and login.get_json()["error"]["code"] == "account_suspended"


def test_role_change_applies_on_next_request_without_new_token(client, make_user):
    from backend.auth.accounts import create_staff_account

    user = make_user()
    body = client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}).get_json()
    assert client.get("/v1/me", headers=_bearer(body)).get_json()["role"] == "user"
    create_staff_account(email=user.email, password="staff passphrase 2026", role="moderator")
    assert client.get("/v1/me", headers=_bearer(body)).get_json()["role"] == "moderator"


@pytest.fixture
def redisless_app(database_url):
    return create_app(app_settings(database_url, "redis://127.0.0.1:1/0", REDIS_SOCKET_TIMEOUT_S=0.2))


def test_redis_down_reads_fall_back_to_postgresql(committed_app, make_user, redisless_app):
    with committed_app.app_context():
        user = make_user()
        live = start_session(user=user, device_name="a", platform="ios", ip=None, user_agent=None)
        ended = start_session(user=user, device_name="b", platform="ios", ip=None, user_agent=None)
        committed_app.test_client().get("/v1/me", headers=_bearer(ended))  # cached as active
        end_session(user_id=user.id, session_id=__import__("uuid").UUID(ended["session_id"]))
    client = redisless_app.test_client()
    assert client.get("/v1/me", headers=_bearer(live)).status_code == 200
    refused = client.get("/v1/me", headers=_bearer(ended))
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "session_revoked"


def test_redis_down_revocation_refused_503_not_half_done(committed_app, make_user, redisless_app):
    with committed_app.app_context():
        user = make_user()
        body = start_session(user=user, device_name="a", platform="ios", ip=None, user_agent=None)
    answer = redisless_app.test_client().post("/v1/auth/logout", headers=_bearer(body))
    assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "auth_unavailable"
    assert committed_app.test_client().get("/v1/me", headers=_bearer(body)).status_code == 200


def test_bearer_scheme_variants_and_garbage_are_401(client):
    for header in ("Basic abc", "Bearer", "Bearer not.a.jwt", "Token x"):
        answer = client.get("/v1/me", headers={"Authorization": header})
        assert answer.status_code == 401 and answer.get_json()["error"]["code"] in {"not_authenticated",
                                                                                    "token_invalid"}
