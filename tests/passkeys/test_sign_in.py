"""Signing in with a passkey: discoverable or by email, a strong factor, each assertion used once."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from backend.auth.passkeys.models import PasskeyChallenge, PasskeyCredential
from backend.common.db import utcnow
from backend.extensions import db
from tests.auth_factors.helpers import assert_error, b64, bearer, enable_totp
from tests.fakes.passkey_authenticator import SoftAuthenticator
from tests.passkeys.conftest import ANDROID_CERT, ORIGIN, add_passkey, passkey_sign_in, sign_in_options


def test_passkey_sign_in_discoverable_without_email_opens_a_session(client, make_user, auth_headers, phone):
    user = make_user()
    assert add_passkey(client, auth_headers(user), phone).status_code == 201
    options = sign_in_options(client)
    assert "allowCredentials" not in options or options["allowCredentials"] == []
    assert options["userVerification"] == "required"
    response = client.post("/v1/auth/passkeys/sign-in", json={"credential": phone.get(options),
                                                              "device_name": "Pixel 9", "platform": "android"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["user"]["id"] == str(user.id) and "mfa_required" not in body
    assert client.get("/v1/me", headers=bearer(body)).get_json()["email"] == user.email
    stored = db.session.scalars(select(PasskeyCredential)).one()
    assert stored.sign_count == 1 and stored.last_used_at is not None
    sessions = client.get("/v1/me/sessions", headers=bearer(body)).get_json()["items"]
    assert any(s["device_name"] == "Pixel 9" and s["current"] for s in sessions)


def test_passkey_sign_in_by_email_lists_that_accounts_passkeys(client, make_user, auth_headers, phone):
    user = make_user()
    assert add_passkey(client, auth_headers(user), phone).status_code == 201
    options = sign_in_options(client, user.email.upper())
    assert [c["id"] for c in options["allowCredentials"]] == [b64(phone.keys[0].credential_id)]
    assert client.post("/v1/auth/passkeys/sign-in", json={"credential": phone.get(options)}).status_code == 200


def test_passkey_sign_in_options_for_unknown_email_look_like_a_real_account(client, make_user, relying_party):
    first = sign_in_options(client, "nobody@example.test")
    again = sign_in_options(client, "nobody@example.test")
    without_passkey = sign_in_options(client, make_user().email)
    assert len(first["allowCredentials"]) == 1 and len(without_passkey["allowCredentials"]) == 1
    assert first["allowCredentials"] == again["allowCredentials"]  # stable: a second look tells nothing
    assert first["allowCredentials"] != without_passkey["allowCredentials"]
    assert set(first) == set(without_passkey)


def test_passkey_sign_in_with_another_accounts_passkey_for_an_email_is_refused(client, make_user, auth_headers,
                                                                                 relying_party):
    owner, other = make_user(), make_user()
    owner_phone, other_phone = SoftAuthenticator(origin=ORIGIN), SoftAuthenticator(origin=ORIGIN)
    assert add_passkey(client, auth_headers(owner), owner_phone).status_code == 201
    assert add_passkey(client, auth_headers(other), other_phone).status_code == 201
    options = sign_in_options(client, owner.email)
    assertion = other_phone.get(options, key=other_phone.keys[0])
    assert_error(client.post("/v1/auth/passkeys/sign-in", json={"credential": assertion}), 401, "passkey_invalid")


def test_passkey_sign_in_skips_the_totp_step(client, make_user, auth_headers, phone):
    user = make_user()
    headers = auth_headers(user)
    enable_totp(client, headers)
    assert client.post("/v1/auth/login", json={"email": user.email, "password": "correct horse battery staple"}
                       ).get_json()["mfa_required"] is True
    assert add_passkey(client, headers, phone).status_code == 201
    response = passkey_sign_in(client, phone)
    assert response.status_code == 200 and "access_token" in response.get_json()


def test_passkey_sign_in_same_assertion_twice_is_refused(client, make_user, auth_headers, phone):
    assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
    assertion = phone.get(sign_in_options(client))
    assert client.post("/v1/auth/passkeys/sign-in", json={"credential": assertion}).status_code == 200
    assert_error(client.post("/v1/auth/passkeys/sign-in", json={"credential": assertion}),
                 401, "passkey_challenge_invalid")


def test_passkey_sign_in_after_the_challenge_expired_is_refused(client, make_user, auth_headers, phone):
    assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
    assertion = phone.get(sign_in_options(client))
    db.session.execute(update(PasskeyChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert_error(client.post("/v1/auth/passkeys/sign-in", json={"credential": assertion}),
                 401, "passkey_challenge_invalid")


def test_passkey_sign_in_with_a_made_up_challenge_is_refused(client, make_user, auth_headers, phone):
    assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
    options = dict(sign_in_options(client), challenge=b64(b"\x01" * 32))
    assert_error(client.post("/v1/auth/passkeys/sign-in", json={"credential": phone.get(options)}),
                 401, "passkey_challenge_invalid")


def test_passkey_sign_in_without_user_verification_is_refused(client, make_user, auth_headers, phone):
    assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
    phone.user_verified = False  # the face or finger was not checked
    assert_error(passkey_sign_in(client, phone), 401, "passkey_invalid")


def test_passkey_sign_in_from_a_phishing_origin_is_refused(client, make_user, auth_headers, phone):
    assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
    phone.origin = "https://example.test.evil.test"
    assert_error(passkey_sign_in(client, phone), 401, "passkey_invalid")


def test_passkey_sign_in_from_the_android_app_origin_works(client, make_user, auth_headers, phone):
    assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
    phone.origin = "android:apk-key-hash:" + b64(bytes.fromhex(ANDROID_CERT.replace(":", "")))
    assert passkey_sign_in(client, phone).status_code == 200


def test_passkey_sign_in_from_an_unlisted_android_app_is_refused(client, make_user, auth_headers, phone):
    assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
    phone.origin = "android:apk-key-hash:" + b64(b"\x07" * 32)  # a repackaged app signed by someone else
    assert_error(passkey_sign_in(client, phone), 401, "passkey_invalid")


def test_passkey_sign_in_with_a_forged_signature_is_refused(client, make_user, auth_headers, phone):
    assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
    assertion = phone.get(sign_in_options(client))
    signature = bytearray(assertion["response"]["signature"].encode())
    signature[10] = ord("A") if signature[10] != ord("A") else ord("B")
    assertion["response"]["signature"] = signature.decode()
    assert_error(client.post("/v1/auth/passkeys/sign-in", json={"credential": assertion}), 401, "passkey_invalid")


def test_passkey_sign_in_synced_passkey_with_zero_counter_works_every_time(client, make_user, auth_headers,
                                                                          relying_party):
    synced = SoftAuthenticator(origin=ORIGIN, synced=True)
    assert add_passkey(client, auth_headers(make_user()), synced).status_code == 201
    for _ in range(3):
        assert passkey_sign_in(client, synced).status_code == 200
    assert db.session.scalars(select(PasskeyCredential)).one().sign_count == 0


def test_passkey_sign_in_with_a_removed_passkey_is_refused_as_unknown(client, make_user, auth_headers, phone):
    user = make_user()
    headers = auth_headers(user)
    passkey_id = add_passkey(client, headers, phone).get_json()["id"]
    assert client.delete(f"/v1/auth/passkeys/{passkey_id}", headers=headers).status_code == 204
    error = assert_error(passkey_sign_in(client, phone), 401, "passkey_unknown")
    assert error["details"]["credential_id"] == b64(phone.keys[0].credential_id)


def test_passkey_sign_in_suspended_account_is_403(client, make_user, auth_headers, phone):
    user = make_user()
    assert add_passkey(client, auth_headers(user), phone).status_code == 201
    user.status = "suspended"
    db.session.commit()
    assert_error(passkey_sign_in(client, phone), 403, "account_suspended")


def test_passkey_sign_in_is_limited_per_client_address(client, make_user, auth_headers, phone, monkeypatch, app):
    assert add_passkey(client, auth_headers(make_user()), phone).status_code == 201
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_IP", 2)
    assert passkey_sign_in(client, phone).status_code == 200
    assert passkey_sign_in(client, phone).status_code == 200
    error = assert_error(passkey_sign_in(client, phone), 429, "too_many_attempts")
    assert error is not None


def test_passkey_sign_in_garbage_is_4xx_not_500(client, relying_party):
    for credential in ({}, {"rawId": "AAAA"}, {"rawId": "AAAA", "response": {"clientDataJSON": "bm90IGpzb24"}},
                       {"rawId": 5, "response": {}}, {"id": "", "response": {"clientDataJSON": "e30"}}):
        response = client.post("/v1/auth/passkeys/sign-in", json={"credential": credential})
        assert response.status_code in (401, 422), (credential, response.get_json())
