"""TOTP two-factor: enrolment, recovery codes, the second sign-in step, turning it off."""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from sqlalchemy import select, update

from backend.auth.factors.models import MfaChallenge, RecoveryCode, TotpCredential
from backend.extensions import db
from tests.auth.conftest import PASSWORD
from tests.auth_factors.helpers import assert_error, bearer, enable_totp, totp_code


def login(client, user):
    return client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD, "device_name": "iPhone",
                                               "platform": "ios"})


def second_step(client, mfa_token, code):
    return client.post("/v1/auth/login/mfa", json={"mfa_token": mfa_token, "code": code})


def test_totp_start_returns_secret_and_provisioning_uri(client, make_user, auth_headers):
    user = make_user(email="otp@example.test")
    response = client.post("/v1/auth/mfa/totp", headers=auth_headers(user))
    assert response.status_code == 201
    body = response.get_json()
    uri = urlparse(body["otpauth_uri"])
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    assert uri.path == "/Groundwork:otp%40example.test"
    assert parse_qs(uri.query) == {"secret": [body["secret"]], "issuer": ["Groundwork"]}
    stored = db.session.get(TotpCredential, user.id)
    assert body["secret"] not in stored.secret_encrypted and stored.confirmed_at is None


def test_totp_confirm_wrong_code_is_401_and_not_enabled(client, make_user, auth_headers):
    headers = auth_headers(make_user())
    secret = client.post("/v1/auth/mfa/totp", headers=headers).get_json()["secret"]
    wrong = f"{(int(totp_code(secret)) + 1) % 1_000_000:06d}"
    assert_error(client.post("/v1/auth/mfa/totp/confirm", headers=headers, json={"code": wrong}), 401,
                 "totp_code_invalid")
    assert client.get("/v1/auth/mfa", headers=headers).get_json() == {"totp_enabled": False,
                                                                     "recovery_codes_remaining": 0}


def test_totp_confirm_returns_ten_recovery_codes_stored_hashed(client, make_user, auth_headers):
    user = make_user()
    headers = auth_headers(user)
    _, codes = enable_totp(client, headers)
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in codes)
    stored = db.session.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).all()
    assert len(stored) == 10 and not {c.replace("-", "") for c in codes} & set(stored)
    assert client.get("/v1/auth/mfa", headers=headers).get_json() == {"totp_enabled": True,
                                                                     "recovery_codes_remaining": 10}


def test_totp_start_when_enabled_is_409_and_secret_never_shown_again(client, make_user, auth_headers):
    headers = auth_headers(make_user())
    enable_totp(client, headers)
    assert_error(client.post("/v1/auth/mfa/totp", headers=headers), 409, "totp_already_enabled")
    assert "secret" not in client.get("/v1/auth/mfa", headers=headers).get_json()


def test_login_with_totp_on_returns_challenge_then_tokens(client, make_user, auth_headers):
    user = make_user()
    secret, _ = enable_totp(client, auth_headers(user))
    first = login(client, user)
    assert first.status_code == 200
    body = first.get_json()
    assert body["mfa_required"] is True and body["methods"] == ["totp", "recovery_code"]
    assert "access_token" not in body and "refresh_token" not in body
    stored = db.session.scalars(select(MfaChallenge.token_hash).where(MfaChallenge.user_id == user.id)).one()
    assert stored != body["mfa_token"]
    done = second_step(client, body["mfa_token"], totp_code(secret))
    assert done.status_code == 200, done.get_json()
    tokens = done.get_json()
    assert tokens["user"]["id"] == str(user.id)
    assert client.get("/v1/me", headers=bearer(tokens)).status_code == 200


def test_login_mfa_same_code_is_not_accepted_twice(client, make_user, auth_headers):
    user = make_user()
    secret, _ = enable_totp(client, auth_headers(user))
    code = totp_code(secret)
    assert second_step(client, login(client, user).get_json()["mfa_token"], code).status_code == 200
    replay = second_step(client, login(client, user).get_json()["mfa_token"], code)
    assert_error(replay, 401, "mfa_code_invalid")
    assert second_step(client, login(client, user).get_json()["mfa_token"], totp_code(secret, 1)).status_code == 200


def test_login_mfa_earlier_step_after_later_one_is_rejected(client, make_user, auth_headers):
    user = make_user()
    secret, _ = enable_totp(client, auth_headers(user))
    assert second_step(client, login(client, user).get_json()["mfa_token"], totp_code(secret, 1)).status_code == 200
    assert_error(second_step(client, login(client, user).get_json()["mfa_token"], totp_code(secret)), 401,
                 "mfa_code_invalid")


def test_login_mfa_token_dies_after_five_failures(client, make_user, auth_headers):
    user = make_user()
    secret, _ = enable_totp(client, auth_headers(user))
    token = login(client, user).get_json()["mfa_token"]
    wrong = f"{(int(totp_code(secret)) + 500_000) % 1_000_000:06d}"
    for remaining in (4, 3, 2, 1, 0):
        error = assert_error(second_step(client, token, wrong), 401, "mfa_code_invalid")
        assert error["details"] == {"attempts_remaining": remaining}
    assert_error(second_step(client, token, totp_code(secret)), 401, "mfa_token_invalid")


def test_login_mfa_token_is_single_use(client, make_user, auth_headers):
    user = make_user()
    secret, codes = enable_totp(client, auth_headers(user))
    token = login(client, user).get_json()["mfa_token"]
    assert second_step(client, token, totp_code(secret)).status_code == 200
    assert_error(second_step(client, token, codes[0]), 401, "mfa_token_invalid")
    assert db.session.scalar(select(RecoveryCode.used_at).where(RecoveryCode.user_id == user.id).limit(1)) is None


def test_login_mfa_expired_or_unknown_token_is_401(client, make_user, auth_headers):
    user = make_user()
    secret, _ = enable_totp(client, auth_headers(user))
    token = login(client, user).get_json()["mfa_token"]
    db.session.execute(update(MfaChallenge).values(expires_at=MfaChallenge.created_at - timedelta(seconds=1)))
    db.session.commit()
    assert_error(second_step(client, token, totp_code(secret)), 401, "mfa_token_invalid")
    assert_error(second_step(client, "made-up", totp_code(secret)), 401, "mfa_token_invalid")


def test_login_mfa_recovery_code_works_once(client, make_user, auth_headers):
    user = make_user()
    _, codes = enable_totp(client, auth_headers(user))
    spoken = codes[3].upper().replace("-", " ")  # read aloud or typed sloppily still works
    assert second_step(client, login(client, user).get_json()["mfa_token"], spoken).status_code == 200
    assert_error(second_step(client, login(client, user).get_json()["mfa_token"], codes[3]), 401, "mfa_code_invalid")
    status = client.get("/v1/auth/mfa", headers=auth_headers(user)).get_json()
    assert status["recovery_codes_remaining"] == 9


def test_login_mfa_is_rate_limited_per_account(client, make_user, auth_headers, app, monkeypatch):
    user = make_user()
    secret, _ = enable_totp(client, auth_headers(user))
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_ACCOUNT", 3)
    tokens = [login(client, user).get_json()["mfa_token"] for _ in range(2)]
    wrong = f"{(int(totp_code(secret)) + 500_000) % 1_000_000:06d}"
    statuses = [second_step(client, tokens[i % 2], wrong).status_code for i in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_totp_disable_needs_a_fresh_code(client, make_user, auth_headers):
    user = make_user()
    headers = auth_headers(user)
    secret, _ = enable_totp(client, headers)
    wrong = f"{(int(totp_code(secret)) + 500_000) % 1_000_000:06d}"
    assert_error(client.delete("/v1/auth/mfa/totp", headers=headers, json={"code": wrong}), 401, "totp_code_invalid")
    assert client.delete("/v1/auth/mfa/totp", headers=headers, json={"code": totp_code(secret)}).status_code == 204
    assert client.get("/v1/auth/mfa", headers=headers).get_json() == {"totp_enabled": False,
                                                                     "recovery_codes_remaining": 0}
    assert "access_token" in login(client, user).get_json()
    assert_error(client.delete("/v1/auth/mfa/totp", headers=headers, json={"code": totp_code(secret, 1)}), 409,
                 "totp_not_enabled")


def test_totp_disable_with_a_recovery_code_works(client, make_user, auth_headers):
    headers = auth_headers(make_user())
    _, codes = enable_totp(client, headers)
    assert client.delete("/v1/auth/mfa/totp", headers=headers, json={"code": codes[0]}).status_code == 204


def test_recovery_codes_regenerate_replaces_the_old_ones(client, make_user, auth_headers):
    user = make_user()
    headers = auth_headers(user)
    secret, old = enable_totp(client, headers)
    response = client.post("/v1/auth/mfa/recovery-codes", headers=headers, json={"code": totp_code(secret)})
    assert response.status_code == 200
    new = response.get_json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    assert_error(second_step(client, login(client, user).get_json()["mfa_token"], old[0]), 401, "mfa_code_invalid")
    assert second_step(client, login(client, user).get_json()["mfa_token"], new[0]).status_code == 200


def test_totp_routes_signed_out_are_401(client):
    for method, path in (("get", "/v1/auth/mfa"), ("post", "/v1/auth/mfa/totp"), ("delete", "/v1/auth/mfa/totp"),
                         ("post", "/v1/auth/mfa/totp/confirm"), ("post", "/v1/auth/mfa/recovery-codes")):
        assert_error(getattr(client, method)(path, json={"code": "123456"}), 401, "not_authenticated")


def test_totp_bad_input_is_422(client, make_user, auth_headers):
    headers = auth_headers(make_user())
    client.post("/v1/auth/mfa/totp", headers=headers)
    for body in ({}, {"code": "12345"}, {"code": 123456}, {"code": "abcdef"}):
        assert_error(client.post("/v1/auth/mfa/totp/confirm", headers=headers, json=body), 422, "validation_failed")
    assert_error(client.post("/v1/auth/login/mfa", json={"mfa_token": "x"}), 422, "validation_failed")


def test_totp_disable_guessing_is_rate_limited(client, make_user, auth_headers, app, monkeypatch):
    headers = auth_headers(make_user())
    secret, _ = enable_totp(client, headers)
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_ACCOUNT", 2)
    wrong = f"{(int(totp_code(secret)) + 500_000) % 1_000_000:06d}"
    statuses = [client.delete("/v1/auth/mfa/totp", headers=headers, json={"code": wrong}).status_code
                for _ in range(3)]
    assert statuses == [401, 401, 429]
    assert_error(client.delete("/v1/auth/mfa/totp", headers=headers, json={"code": totp_code(secret)}), 429,
                 "too_many_attempts")


def test_export_shows_two_factor_state_but_never_its_secrets(client, make_user, auth_headers):
    user = make_user()
    headers = auth_headers(user)
    before = client.get("/v1/me/export", headers=headers).get_json()["sign_in_factors"]
    assert before == {"identities": [], "two_factor": {"totp_enabled": False, "enabled_at": None,
                                                       "recovery_codes_left": 0}}
    secret, codes = enable_totp(client, headers)
    exported = client.get("/v1/me/export", headers=headers).get_json()
    factors = exported["sign_in_factors"]["two_factor"]
    assert factors["totp_enabled"] is True and factors["recovery_codes_left"] == len(codes) == 10
    assert secret not in str(exported) and not any(code in str(exported) for code in codes)
