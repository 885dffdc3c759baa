"""Adding passkeys: the ceremony, who may add one, what is stored, and what is refused."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from backend.auth.models import SecurityEvent, Session
from backend.auth.passkeys.models import PasskeyChallenge, PasskeyCredential
from backend.common.db import utcnow
from backend.extensions import db
from tests.auth.conftest import PASSWORD
from tests.auth_factors.helpers import assert_error, b64, last_mail
from tests.fakes.passkey_authenticator import SoftAuthenticator
from tests.passkeys.conftest import ANDROID_CERT, ORIGIN, RP_ID, add_passkey


def test_passkey_registration_stores_key_counter_transports_and_name(client, make_user, auth_headers, phone,
                                                                     run_jobs):
    user = make_user()
    response = add_passkey(client, auth_headers(user), phone, device_name="Ana's iPhone")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["device_name"] == "Ana's iPhone" and body["status"] == "active"
    assert body["transports"] == ["hybrid", "internal"] and body["synced"] is False
    stored = db.session.scalars(select(PasskeyCredential).where(PasskeyCredential.user_id == user.id)).one()
    assert stored.credential_id == phone.keys[0].credential_id and stored.sign_count == 0
    assert stored.aaguid == "fbfc3007-154e-4ecc-8c0b-6e020557d7bd" and len(stored.public_key) > 64
    assert "public_key" not in body
    assert [e.kind for e in db.session.scalars(select(SecurityEvent).where(SecurityEvent.user_id == user.id))] \
        == ["passkey_added"]
    run_jobs()
    assert "Ana's iPhone" in last_mail(user.email).body_text


def test_passkey_registration_options_ask_for_a_discoverable_verified_passkey(client, make_user, auth_headers,
                                                                               relying_party):
    user = make_user(display_name="Ana")
    options = client.post("/v1/auth/passkeys/registration/options", headers=auth_headers(user), json={}
                          ).get_json()["options"]
    assert options["rp"] == {"id": RP_ID, "name": "Groundwork"}
    assert options["user"]["name"] == user.email and options["user"]["displayName"] == "Ana"
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    assert options["attestation"] == "none" and len(options["challenge"]) >= 43


def test_passkey_registration_excludes_the_phones_already_registered(client, make_user, auth_headers, phone):
    user = make_user()
    headers = auth_headers(user)
    assert add_passkey(client, headers, phone).status_code == 201
    options = client.post("/v1/auth/passkeys/registration/options", headers=headers, json={}).get_json()["options"]
    assert [c["id"] for c in options["excludeCredentials"]] == [b64(phone.keys[0].credential_id)]


def test_passkey_registration_synced_passkey_is_marked_synced(client, make_user, auth_headers, relying_party):
    response = add_passkey(client, auth_headers(make_user()), SoftAuthenticator(origin=ORIGIN, synced=True))
    assert response.status_code == 201
    assert response.get_json()["synced"] is True and response.get_json()["backup_eligible"] is True


def test_passkey_registration_none_attestation_is_accepted(client, make_user, auth_headers, relying_party):
    response = add_passkey(client, auth_headers(make_user()), SoftAuthenticator(origin=ORIGIN, attestation="none"))
    assert response.status_code == 201


def test_passkey_registration_from_the_android_app_origin_is_accepted(client, make_user, auth_headers,
                                                                       relying_party):
    origin = "android:apk-key-hash:" + b64(bytes.fromhex(ANDROID_CERT.replace(":", "")))
    response = add_passkey(client, auth_headers(make_user()), SoftAuthenticator(origin=origin))
    assert response.status_code == 201, response.get_json()


def test_passkey_registration_from_a_foreign_origin_is_refused(client, make_user, auth_headers, relying_party):
    user = make_user()
    response = add_passkey(client, auth_headers(user), SoftAuthenticator(origin="https://examp1e.test"))
    assert_error(response, 422, "passkey_registration_invalid")
    assert db.session.scalar(select(PasskeyCredential).where(PasskeyCredential.user_id == user.id)) is None


def test_passkey_registration_without_user_verification_is_refused(client, make_user, auth_headers, relying_party):
    response = add_passkey(client, auth_headers(make_user()), SoftAuthenticator(origin=ORIGIN, user_verified=False))
    assert_error(response, 422, "passkey_registration_invalid")


def test_passkey_registration_answer_replayed_is_refused(client, make_user, auth_headers, phone):
    user = make_user()
    headers = auth_headers(user)
    options = client.post("/v1/auth/passkeys/registration/options", headers=headers, json={}).get_json()["options"]
    credential = phone.create(options)
    assert client.post("/v1/auth/passkeys", headers=headers, json={"credential": credential}).status_code == 201
    assert_error(client.post("/v1/auth/passkeys", headers=headers, json={"credential": credential}),
                 401, "passkey_challenge_invalid")


def test_passkey_registration_with_another_users_challenge_is_refused(client, make_user, auth_headers, phone):
    victim_headers, attacker_headers = auth_headers(make_user()), auth_headers(make_user())
    options = client.post("/v1/auth/passkeys/registration/options", headers=victim_headers, json={}
                          ).get_json()["options"]
    assert_error(client.post("/v1/auth/passkeys", headers=attacker_headers, json={"credential": phone.create(options)}),
                 401, "passkey_challenge_invalid")
    # The victim's challenge was not spent by the attempt.
    assert client.post("/v1/auth/passkeys", headers=victim_headers,
                       json={"credential": SoftAuthenticator(origin=ORIGIN).create(options)}).status_code == 201


def test_passkey_registration_challenge_expired_is_refused(client, make_user, auth_headers, phone):
    headers = auth_headers(make_user())
    options = client.post("/v1/auth/passkeys/registration/options", headers=headers, json={}).get_json()["options"]
    db.session.execute(update(PasskeyChallenge).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert_error(client.post("/v1/auth/passkeys", headers=headers, json={"credential": phone.create(options)}),
                 401, "passkey_challenge_invalid")


def test_passkey_registration_garbage_response_is_422_not_500(client, make_user, auth_headers, phone):
    headers = auth_headers(make_user())
    for credential in ({}, {"response": "x"}, {"response": {"clientDataJSON": "!!!"}},
                       {"response": {"clientDataJSON": "e30"}}):
        response = client.post("/v1/auth/passkeys", headers=headers, json={"credential": credential})
        assert response.status_code in (401, 422), response.get_json()


def test_passkey_registration_on_an_old_session_needs_the_password(client, make_user, auth_headers, phone):
    user = make_user()
    headers = auth_headers(user)
    db.session.execute(update(Session).where(Session.user_id == user.id)
                       .values(created_at=utcnow() - timedelta(hours=2)))
    db.session.commit()
    error = assert_error(client.post("/v1/auth/passkeys/registration/options", headers=headers, json={}),
                         401, "reauthentication_required")
    assert error["details"]["password_accepted"] is True
    assert_error(client.post("/v1/auth/passkeys/registration/options", headers=headers,
                             json={"password": "not the password"}), 401, "invalid_credentials")
    assert add_passkey(client, headers, phone, password=PASSWORD).status_code == 201


def test_passkey_registration_for_anonymous_account_is_409(client, relying_party):
    body = client.post("/v1/auth/anonymous", json={}).get_json()
    response = client.post("/v1/auth/passkeys/registration/options",
                           headers={"Authorization": f"Bearer {body['access_token']}"}, json={})
    assert_error(response, 409, "anonymous_account")


def test_passkey_registration_with_unverified_email_is_403(client, make_user, auth_headers, relying_party):
    response = client.post("/v1/auth/passkeys/registration/options", headers=auth_headers(make_user(verified=False)),
                           json={})
    assert_error(response, 403, "email_not_verified")


def test_passkey_registration_signed_out_is_401(client, relying_party):
    assert_error(client.post("/v1/auth/passkeys/registration/options", json={}), 401, "not_authenticated")
