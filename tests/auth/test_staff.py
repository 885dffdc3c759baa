"""Staff accounts (CLI) and the console sign-in: CSRF, staff only, limits, cookie policy, live re-check."""
from __future__ import annotations

import re

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from backend.app import create_app
from backend.auth.accounts import find_by_email, suspend_account
from backend.auth.passwords import verify_password
from tests.auth.conftest import PASSWORD
from tests.conftest import app_settings

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def _csrf(client, path="/admin/login"):
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def _sign_in(client, email, password):
    token = _csrf(client)
    return client.post("/admin/login", data={"csrf_token": token, "email": email, "password": password})


def test_create_staff_cli_makes_verified_staff_account(app, db_session):
    result = app.test_cli_runner().invoke(args=["create-staff", "--email", "Boss@Example.test", "--password",
                                                "console passphrase 1", "--role", "admin"])
    assert result.exit_code == 0, result.output
    user = find_by_email("boss@example.test")
    assert user.role == "admin" and user.email_verified_at is not None
    assert verify_password(user.password_hash, "console passphrase 1")
    weak = app.test_cli_runner().invoke(args=["create-staff", "--email", "x@example.test", "--password",
                                              "password", "--role", "admin"])
    assert weak.exit_code != 0 and "password_too_common" in weak.output
    bad_role = app.test_cli_runner().invoke(args=["create-staff", "--email", "y@example.test", "--password",
                                                  "console passphrase 1", "--role", "user"])
    assert bad_role.exit_code != 0


def test_console_redirects_anonymous_to_staff_login(client):
    answer = client.get("/admin/")
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]


def test_staff_sign_in_with_csrf_opens_console_and_sets_safe_cookie(client, make_user):
    staff = make_user(role="moderator")
    answer = _sign_in(client, staff.email, PASSWORD)
    assert answer.status_code == 302
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get("/admin/").status_code == 200


def test_staff_sign_in_without_csrf_token_refused(client, make_user):
    staff = make_user(role="admin")
    answer = client.post("/admin/login", data={"email": staff.email, "password": PASSWORD})
    assert answer.status_code == 400
    assert client.get("/admin/").status_code == 302


def test_staff_sign_in_regular_user_or_wrong_password_same_refusal(client, make_user):
    user, staff = make_user(role="user"), make_user(role="admin")
    regular = _sign_in(client, user.email, PASSWORD)
    wrong = _sign_in(client, staff.email, "not the password")
    assert regular.status_code == wrong.status_code == 401
    assert "no console access" in regular.get_data(as_text=True) and "no console access" in wrong.get_data(
        as_text=True)
    assert client.get("/admin/").status_code == 302


def test_staff_sign_in_limited_per_account(client, make_user, app, monkeypatch):
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_ACCOUNT", 2)
    staff = make_user(role="admin")
    codes = [_sign_in(client, staff.email, "wrong password 1").status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    assert _sign_in(client, staff.email, PASSWORD).status_code == 429


def test_staff_sign_in_next_parameter_cannot_leave_console(client, make_user):
    staff = make_user(role="admin")
    client.get("/admin/login?next=https://evil.example/")
    token = CSRF.search(client.get("/admin/login?next=//evil.example/x").get_data(as_text=True)).group(1)
    answer = client.post("/admin/login", data={"csrf_token": token, "email": staff.email, "password": PASSWORD})
    assert answer.status_code == 302 and answer.headers["Location"].startswith("/admin")


def test_suspended_staff_loses_console_on_next_request(client, make_user):
    staff = make_user(role="admin")
    _sign_in(client, staff.email, PASSWORD)
    assert client.get("/admin/").status_code == 200
    suspend_account(user_id=staff.id)
    assert client.get("/admin/").status_code == 302


def test_production_console_cookie_is_secure(database_url, services):
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    app = create_app(app_settings(database_url, services.redis_url, ENV="production", JWT_PRIVATE_KEYS=pem))
    assert app.config["SESSION_COOKIE_SECURE"] and app.config["SESSION_COOKIE_HTTPONLY"]


def _enable_totp(user):
    import pyotp

    from backend.auth.factors import totp

    secret = totp.start_totp(user=user)["secret"]
    return totp.confirm_totp(user=user, code=pyotp.TOTP(secret).now())


def test_staff_with_two_factor_needs_code_step(client, make_user):
    staff = make_user(role="admin")
    recovery = _enable_totp(staff)
    first = _sign_in(client, staff.email, PASSWORD)
    assert first.status_code == 302 and first.headers["Location"].endswith("/admin/login/code")
    assert client.get("/admin/").status_code == 302  # the password alone opens nothing
    token = _csrf(client, "/admin/login/code")
    wrong = client.post("/admin/login/code", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 401
    answer = client.post("/admin/login/code", data={"csrf_token": token, "code": recovery[0]})
    assert answer.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_api_login_with_two_factor_answers_challenge_not_tokens(client, make_user):
    user = make_user()
    _enable_totp(user)
    body = client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}).get_json()
    assert body["mfa_required"] is True and body["mfa_token"] and "access_token" not in body


def test_console_session_lasts_eight_hours_not_flasks_31_days(app):
    from datetime import timedelta

    assert app.permanent_session_lifetime == timedelta(hours=8)
