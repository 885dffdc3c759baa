"""Passwordless sign-in with an emailed six-digit code."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from backend.auth.factors.models import EmailCode
from backend.auth.models import OutboxMail, User
from backend.extensions import db
from tests.auth.conftest import PASSWORD
from tests.auth_factors.helpers import assert_error, bearer, enable_totp, mailed_code


def request_code(client, email):
    return client.post("/v1/auth/email-code/request", json={"email": email})


def verify(client, email, code, headers=None):
    return client.post("/v1/auth/email-code/verify", headers=headers or {},
                       json={"email": email, "code": code, "device_name": "Pixel 9", "platform": "android"})


def other_code(code):
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_email_code_new_address_creates_verified_account(client, run_jobs):
    assert request_code(client, "Nia@Example.test").status_code == 202
    code = mailed_code(run_jobs, "nia@example.test")
    response = verify(client, "nia@example.test", code)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["user"]["email"] == "nia@example.test" and body["user"]["email_verified"] is True
    assert client.get("/v1/me", headers=bearer(body)).status_code == 200


def test_email_code_existing_account_signs_into_it(client, run_jobs, make_user):
    user = make_user(email="old@example.test")
    request_code(client, "old@example.test")
    body = verify(client, "old@example.test", mailed_code(run_jobs, "old@example.test")).get_json()
    assert body["user"]["id"] == str(user.id)
    assert db.session.scalar(select(func.count()).select_from(User).where(User.email == "old@example.test")) == 1


def test_email_code_request_same_answer_for_known_and_unknown_addresses(client, make_user, run_jobs):
    make_user(email="known@example.test")
    known, unknown = request_code(client, "known@example.test"), request_code(client, "nobody@example.test")
    assert known.status_code == unknown.status_code == 202
    assert known.get_json() == unknown.get_json()
    run_jobs()
    assert db.session.scalar(select(func.count()).select_from(User).where(User.email == "nobody@example.test")) == 0
    assert {m.recipient for m in db.session.scalars(select(OutboxMail))} == {"known@example.test",
                                                                             "nobody@example.test"}


def test_email_code_is_stored_hashed_and_expires_in_ten_minutes(client, run_jobs):
    request_code(client, "hash@example.test")
    code = mailed_code(run_jobs, "hash@example.test")
    row = db.session.scalars(select(EmailCode).where(EmailCode.email == "hash@example.test")).one()
    assert code not in row.code_hash
    assert timedelta(minutes=9) < row.expires_at - row.created_at <= timedelta(minutes=10, seconds=1)


def test_email_code_is_single_use(client, run_jobs):
    request_code(client, "once@example.test")
    code = mailed_code(run_jobs, "once@example.test")
    assert verify(client, "once@example.test", code).status_code == 200
    assert_error(verify(client, "once@example.test", code), 401, "code_invalid")


def test_email_code_dies_after_five_wrong_guesses(client, run_jobs):
    request_code(client, "guess@example.test")
    code = mailed_code(run_jobs, "guess@example.test")
    for _ in range(5):
        assert_error(verify(client, "guess@example.test", other_code(code)), 401, "code_invalid")
    assert_error(verify(client, "guess@example.test", code), 401, "code_invalid")


def test_email_code_newer_request_replaces_the_older_code(client, run_jobs):
    request_code(client, "two@example.test")
    first = mailed_code(run_jobs, "two@example.test")
    request_code(client, "two@example.test")
    second = mailed_code(run_jobs, "two@example.test")
    if first != second:  # one in a million they coincide
        assert_error(verify(client, "two@example.test", first), 401, "code_invalid")
    assert verify(client, "two@example.test", second).status_code == 200


def test_email_code_expired_is_rejected(client, run_jobs):
    request_code(client, "late@example.test")
    code = mailed_code(run_jobs, "late@example.test")
    db.session.execute(update(EmailCode).values(expires_at=EmailCode.created_at - timedelta(seconds=1)))
    db.session.commit()
    assert_error(verify(client, "late@example.test", code), 401, "code_invalid")


def test_email_code_for_another_address_is_rejected(client, run_jobs):
    request_code(client, "mine@example.test")
    code = mailed_code(run_jobs, "mine@example.test")
    assert_error(verify(client, "yours@example.test", code), 401, "code_invalid")


def test_email_code_request_is_rate_limited_per_address_and_ip(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "AUTH_EMAIL_LIMIT_PER_ACCOUNT", 2)  # mails per address
    statuses = [request_code(client, "spam@example.test").status_code for _ in range(3)]
    assert statuses == [202, 202, 429]
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_IP", 4)
    statuses = [request_code(client, f"spray{n}@example.test").status_code for n in range(3)]
    assert statuses == [202, 429, 429]  # this address already made 3 of its 4 requests
    error = assert_error(request_code(client, "spray9@example.test"), 429, "too_many_attempts")
    assert error["message"]


def test_email_code_unverified_account_loses_unproven_password_and_sessions(client, run_jobs, make_user,
                                                                             auth_headers):
    squatter = make_user(email="victim@example.test", verified=False)
    squatter_headers = auth_headers(squatter)
    request_code(client, "victim@example.test")
    body = verify(client, "victim@example.test", mailed_code(run_jobs, "victim@example.test")).get_json()
    assert body["user"]["id"] == str(squatter.id) and body["user"]["email_verified"] is True
    assert client.get("/v1/me", headers=squatter_headers).status_code == 401
    login = client.post("/v1/auth/login", json={"email": "victim@example.test", "password": PASSWORD})
    assert_error(login, 401, "invalid_credentials")


def test_email_code_with_totp_on_asks_for_the_second_factor(client, run_jobs, make_user, auth_headers):
    user = make_user(email="mfa@example.test")
    enable_totp(client, auth_headers(user))
    request_code(client, "mfa@example.test")
    body = verify(client, "mfa@example.test", mailed_code(run_jobs, "mfa@example.test")).get_json()
    assert body["mfa_required"] is True and "access_token" not in body


def test_email_code_suspended_account_is_403(client, run_jobs, make_user):
    make_user(email="sus@example.test", status="suspended")
    request_code(client, "sus@example.test")
    assert_error(verify(client, "sus@example.test", mailed_code(run_jobs, "sus@example.test")), 403,
                 "account_suspended")


def test_email_code_bad_input_is_422(client):
    assert_error(request_code(client, "not-an-email"), 422, "validation_failed")
    for code in ("12345", "1234567", "abcdef", 123456):
        assert_error(verify(client, "a@example.test", code), 422, "validation_failed")
