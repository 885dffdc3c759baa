"""Anonymous accounts and their upgrade in place (same user id, data kept, never a silent merge)."""
from __future__ import annotations

import uuid

from sqlalchemy import select

from backend.auth.factors.models import SocialIdentity
from backend.auth.models import User
from backend.extensions import db
from backend.notifications.models import Device
from tests.auth_factors.conftest import GOOGLE_AUD
from tests.auth_factors.helpers import assert_error, bearer, last_mail, mailed_code

STRONG = "a long and unusual passphrase 42"


def start(client):
    response = client.post("/v1/auth/anonymous", json={"device_name": "iPad", "platform": "ios"})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def with_data(client, body):
    """Give the anonymous account a profile and a device, as an app would before signing up."""
    headers = bearer(body)
    assert client.patch("/v1/me", headers=headers, json={"display_name": "Guest", "properties": {"level": 3}}
                        ).status_code == 200
    device = Device(user_id=uuid.UUID(body["user"]["id"]), installation_id=uuid.uuid4().hex, platform="ios")
    db.session.add(device)
    db.session.commit()
    return device.id


def assert_kept(client, body, device_id, headers=None):
    me = client.get("/v1/me", headers=headers or bearer(body)).get_json()
    assert me["id"] == body["user"]["id"]
    assert me["display_name"] == "Guest" and me["properties"] == {"level": 3}
    assert str(db.session.get(Device, device_id).user_id) == body["user"]["id"]
    return me


def test_anonymous_start_creates_device_only_account(client):
    body = start(client)
    assert body["user"]["is_anonymous"] is True and body["user"]["email"] is None
    user = db.session.get(User, uuid.UUID(body["user"]["id"]))
    assert user.is_anonymous and user.password_hash is None


def test_anonymous_start_is_rate_limited_per_ip(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_IP", 2)
    start(client), start(client)
    assert_error(client.post("/v1/auth/anonymous", json={}), 429, "too_many_attempts")


def test_anonymous_upgrade_with_password_keeps_user_and_data(client, run_jobs):
    body = start(client)
    device_id = with_data(client, body)
    response = client.post("/v1/auth/anonymous/upgrade", headers=bearer(body),
                           json={"email": "Grown@Example.test", "password": STRONG})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["id"] == body["user"]["id"]
    me = assert_kept(client, body, device_id)  # the anonymous session carries on
    assert me["email"] == "grown@example.test" and me["is_anonymous"] is False
    run_jobs()
    assert "verify-email" in last_mail("grown@example.test").body_text


def test_anonymous_upgrade_with_taken_email_is_409_and_changes_nothing(client, make_user):
    make_user(email="owner@example.test")
    body = start(client)
    response = client.post("/v1/auth/anonymous/upgrade", headers=bearer(body),
                           json={"email": "owner@example.test", "password": STRONG})
    assert_error(response, 409, "email_in_use")
    assert db.session.get(User, uuid.UUID(body["user"]["id"])).is_anonymous is True


def test_anonymous_upgrade_weak_password_is_422(client):
    body = start(client)
    response = client.post("/v1/auth/anonymous/upgrade", headers=bearer(body),
                           json={"email": "weak@example.test", "password": "password123"})
    assert_error(response, 422, "password_too_common")


def test_anonymous_upgrade_of_full_account_is_409(client, make_user, auth_headers):
    response = client.post("/v1/auth/anonymous/upgrade", headers=auth_headers(make_user()),
                           json={"email": "x@example.test", "password": STRONG})
    assert_error(response, 409, "not_anonymous")


def test_anonymous_upgrade_signed_out_is_401(client):
    assert_error(client.post("/v1/auth/anonymous/upgrade", json={"email": "x@example.test", "password": STRONG}),
                 401, "not_authenticated")


def test_anonymous_upgrade_by_google_sign_in_keeps_user_and_data(client, google):
    body = start(client)
    device_id = with_data(client, body)
    token = google.id_token(sub="g-anon", aud=GOOGLE_AUD, email="anon@example.test")
    response = client.post("/v1/auth/social/google", headers=bearer(body), json={"id_token": token})
    assert response.status_code == 200, response.get_json()
    upgraded = response.get_json()
    assert upgraded["user"]["id"] == body["user"]["id"]
    me = assert_kept(client, body, device_id, headers=bearer(upgraded))
    assert me["email"] == "anon@example.test" and me["is_anonymous"] is False
    identity = db.session.scalars(select(SocialIdentity)).one()
    assert str(identity.user_id) == body["user"]["id"]


def test_anonymous_upgrade_by_google_with_taken_email_is_409(client, google, make_user):
    make_user(email="someone@example.test")
    body = start(client)
    token = google.id_token(sub="g-taken", aud=GOOGLE_AUD, email="someone@example.test")
    assert_error(client.post("/v1/auth/social/google", headers=bearer(body), json={"id_token": token}),
                 409, "email_in_use")
    assert db.session.scalars(select(SocialIdentity)).first() is None


def test_anonymous_upgrade_by_google_identity_of_another_account_is_409(client, google):
    token = google.id_token(sub="g-existing", aud=GOOGLE_AUD, email="exists@example.test")
    client.post("/v1/auth/social/google", json={"id_token": token})
    body = start(client)
    assert_error(client.post("/v1/auth/social/google", headers=bearer(body), json={"id_token": token}),
                 409, "identity_in_use")


def test_anonymous_upgrade_by_email_code_keeps_user_and_data(client, run_jobs):
    body = start(client)
    device_id = with_data(client, body)
    client.post("/v1/auth/email-code/request", json={"email": "coded@example.test"})
    code = mailed_code(run_jobs, "coded@example.test")
    response = client.post("/v1/auth/email-code/verify", headers=bearer(body),
                           json={"email": "coded@example.test", "code": code})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["user"]["id"] == body["user"]["id"]
    me = assert_kept(client, body, device_id, headers=bearer(response.get_json()))
    assert me["email"] == "coded@example.test" and me["email_verified"] is True


def test_anonymous_upgrade_by_email_code_with_taken_email_is_409(client, run_jobs, make_user):
    make_user(email="held@example.test")
    body = start(client)
    client.post("/v1/auth/email-code/request", json={"email": "held@example.test"})
    code = mailed_code(run_jobs, "held@example.test")
    response = client.post("/v1/auth/email-code/verify", headers=bearer(body),
                           json={"email": "held@example.test", "code": code})
    assert_error(response, 409, "email_in_use")
    assert db.session.get(User, uuid.UUID(body["user"]["id"])).is_anonymous is True


def test_social_sign_in_with_a_broken_bearer_is_401_not_a_new_account(client, google):
    token = google.id_token(sub="g-broken", aud=GOOGLE_AUD)
    response = client.post("/v1/auth/social/google", headers={"Authorization": "Bearer nonsense"},
                           json={"id_token": token})
    assert response.status_code == 401
    assert db.session.scalars(select(SocialIdentity)).first() is None


def test_anonymous_upgrade_by_google_ends_the_anonymous_session(client, google):
    body = start(client)
    token = google.id_token(sub="g-retire", aud=GOOGLE_AUD, email="retire@example.test")
    upgraded = client.post("/v1/auth/social/google", headers=bearer(body), json={"id_token": token}).get_json()
    assert_error(client.get("/v1/me", headers=bearer(body)), 401, "account_upgraded")
    assert_error(client.post("/v1/auth/refresh", json={"refresh_token": body["refresh_token"]}),
                 401, "account_upgraded")
    assert client.get("/v1/me", headers=bearer(upgraded)).status_code == 200


def test_anonymous_upgrade_by_email_code_ends_the_anonymous_session(client, run_jobs):
    body = start(client)
    client.post("/v1/auth/email-code/request", json={"email": "retire2@example.test"})
    code = mailed_code(run_jobs, "retire2@example.test")
    upgraded = client.post("/v1/auth/email-code/verify", headers=bearer(body),
                           json={"email": "retire2@example.test", "code": code}).get_json()
    assert_error(client.get("/v1/me", headers=bearer(body)), 401, "account_upgraded")
    assert client.get("/v1/me", headers=bearer(upgraded)).status_code == 200
