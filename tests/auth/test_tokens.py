"""Access tokens and refresh rotation: grace window, reuse detection, key rotation, JWKS."""
from __future__ import annotations

import threading
import uuid
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from backend.auth import tokens
from backend.auth.sessions import start_session
from backend.auth.tokens import issue_access_token, load_keys
from backend.common.db import utcnow
from tests.auth.conftest import PASSWORD


def _login(client, user):
    answer = client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD, "device_name": "Pixel"})
    assert answer.status_code == 200
    return answer.get_json()


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def _error(answer):
    return answer.status_code, answer.get_json()["error"]["code"]


def test_refresh_rotates_and_old_token_within_grace_gets_same_pair(client, make_user):
    first = _login(client, make_user())
    new = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).get_json()
    assert new["refresh_token"] != first["refresh_token"] and new["session_id"] == first["session_id"]
    retry = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).get_json()
    assert (retry["access_token"], retry["refresh_token"]) == (new["access_token"], new["refresh_token"])
    assert client.get("/v1/me", headers=_bearer(new["access_token"])).status_code == 200
    newer = client.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert newer.status_code == 200


def test_refresh_reuse_after_grace_revokes_whole_session(client, make_user, app, monkeypatch):
    monkeypatch.setitem(app.config, "REFRESH_GRACE_S", 0)
    first = _login(client, make_user())
    new = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).get_json()
    reused = client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert _error(reused) == (401, "refresh_token_reused")
    # The whole family is dead: the legitimate newest tokens stop working too, and say why.
    assert _error(client.post("/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})) == (
        401, "refresh_token_reused")
    assert _error(client.get("/v1/me", headers=_bearer(new["access_token"]))) == (401, "refresh_token_reused")


def test_refresh_twenty_concurrent_same_token_all_get_same_pair(committed_app, make_user):
    with committed_app.app_context():
        user = make_user()
        body = start_session(user=user, device_name="phone", platform="android", ip=None, user_agent=None)
    results: list = []
    barrier = threading.Barrier(20)

    def refresh():
        client = committed_app.test_client()
        barrier.wait()
        answer = client.post("/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
        results.append((answer.status_code, answer.get_json()))

    threads = [threading.Thread(target=refresh) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [status for status, _ in results] == [200] * 20, results
    assert len({(b["access_token"], b["refresh_token"]) for _, b in results}) == 1
    pair = results[0][1]
    client = committed_app.test_client()
    assert client.get("/v1/me", headers=_bearer(pair["access_token"])).status_code == 200
    assert client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 200


def test_refresh_token_unknown_or_access_token_refused(client, make_user):
    first = _login(client, make_user())
    assert _error(client.post("/v1/auth/refresh", json={"refresh_token": "x" * 43})) == (401, "token_invalid")
    assert _error(client.post("/v1/auth/refresh", json={"refresh_token": first["access_token"][:200]})) == (
        401, "token_invalid")
    assert _error(client.get("/v1/me", headers=_bearer(first["refresh_token"]))) == (401, "token_invalid")


def test_refresh_expired_session_says_session_expired(client, make_user, app, monkeypatch):
    monkeypatch.setitem(app.config, "REFRESH_TOKEN_TTL_S", -1)
    first = _login(client, make_user())
    assert _error(client.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})) == (
        401, "session_expired")


def test_access_token_claims_and_jwks_verification(client, make_user, app):
    user = make_user(role="analyst")
    body = _login(client, user)
    keys = client.get("/.well-known/jwks.json").get_json()["keys"]
    header = jwt.get_unverified_header(body["access_token"])
    assert header["alg"] == "EdDSA" and header["kid"] == keys[0]["kid"]
    public = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(body["access_token"], public, algorithms=["EdDSA"], audience=app.config["JWT_AUDIENCE"],
                        issuer=app.config["JWT_ISSUER"])
    assert claims["sub"] == str(user.id) and claims["sid"] == body["session_id"] and claims["role"] == "analyst"
    assert claims["typ"] == "access" and claims["ver"] == 0 and 800 <= claims["exp"] - claims["iat"] <= 1000
    assert "d" not in keys[0]  # public halves only


def test_expired_access_token_says_token_expired(client, make_user):
    user = make_user()
    body = _login(client, user)
    old = issue_access_token(user_id=user.id, session_id=uuid.UUID(body["session_id"]), role="user", token_version=0,
                             issued_at=utcnow() - timedelta(hours=1), jti=uuid.uuid4())
    assert _error(client.get("/v1/me", headers=_bearer(old))) == (401, "token_expired")


def test_token_verified_earlier_still_expires_on_time(client, make_user, app, monkeypatch):
    """The per-worker memory of verified tokens re-checks exp on every use (5 s leeway)."""
    user = make_user()
    body = _login(client, user)
    ttl = app.config["ACCESS_TOKEN_TTL_S"]
    short = issue_access_token(user_id=user.id, session_id=uuid.UUID(body["session_id"]), role="user",
                               token_version=0, issued_at=utcnow() - timedelta(seconds=ttl + 3), jti=uuid.uuid4())
    assert client.get("/v1/me", headers=_bearer(short)).status_code == 200  # inside the leeway: verified, remembered
    later = utcnow() + timedelta(seconds=2.5)  # the app's clock moved on: now past exp + leeway
    monkeypatch.setattr(tokens, "utcnow", lambda: later)
    assert _error(client.get("/v1/me", headers=_bearer(short))) == (401, "token_expired")


def _pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_key_rotation_old_tokens_still_verify_new_key_signs(client, make_user, app, monkeypatch):
    old_key, new_key = ed25519.Ed25519PrivateKey.generate(), rsa.generate_private_key(public_exponent=65537,
                                                                                       key_size=2048)
    monkeypatch.setitem(app.extensions, "groundwork.jwt_keys", load_keys({"JWT_PRIVATE_KEYS": _pem(old_key)}))
    user = make_user()
    before = _login(client, user)
    rotated = load_keys({"JWT_PRIVATE_KEYS": _pem(new_key) + "\n" + _pem(old_key)})
    monkeypatch.setitem(app.extensions, "groundwork.jwt_keys", rotated)
    assert client.get("/v1/me", headers=_bearer(before["access_token"])).status_code == 200
    after = _login(client, user)
    assert jwt.get_unverified_header(after["access_token"]) == {"alg": "RS256", "kid": rotated[0].kid,
                                                                 "typ": "at+jwt"}
    assert client.get("/v1/me", headers=_bearer(after["access_token"])).status_code == 200
    assert [k["kid"] for k in client.get("/.well-known/jwks.json").get_json()["keys"]] == [k.kid for k in rotated]


def test_logout_ends_this_session_only(client, make_user):
    user = make_user()
    phone, tablet = _login(client, user), _login(client, user)
    assert client.post("/v1/auth/logout", headers=_bearer(phone["access_token"])).status_code == 204
    assert _error(client.get("/v1/me", headers=_bearer(phone["access_token"]))) == (401, "session_revoked")
    assert _error(client.post("/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]})) == (
        401, "session_revoked")
    assert client.get("/v1/me", headers=_bearer(tablet["access_token"])).status_code == 200


def test_logout_all_ends_every_session(client, make_user):
    user = make_user()
    phone, tablet = _login(client, user), _login(client, user)
    assert client.post("/v1/auth/logout-all", headers=_bearer(phone["access_token"])).status_code == 204
    for body in (phone, tablet):
        assert _error(client.get("/v1/me", headers=_bearer(body["access_token"]))) == (401, "session_revoked")
        assert client.post("/v1/auth/refresh", json={"refresh_token": body["refresh_token"]}).status_code == 401
