"""Unproven claims on an address lose everything once the mailbox's owner proves it elsewhere."""
from __future__ import annotations

from sqlalchemy import select

from backend.auth.models import SecurityEvent, User
from backend.extensions import db
from tests.auth.conftest import PASSWORD
from tests.auth.test_accounts import last_link, path_of
from tests.auth_factors.conftest import GOOGLE_AUD
from tests.auth_factors.helpers import assert_error, bearer, enable_totp, last_mail

BROWSER = {"Accept": "text/html,*/*;q=0.8"}
ATTACKER_PASSWORD = "attacker's own long passphrase"


def anonymous_claim(client, email: str) -> dict:
    """An attacker's anonymous account upgraded with someone else's address and the attacker's password."""
    body = client.post("/v1/auth/anonymous", json={}).get_json()
    upgraded = client.post("/v1/auth/anonymous/upgrade", headers=bearer(body),
                           json={"email": email, "password": ATTACKER_PASSWORD})
    assert upgraded.status_code == 200, upgraded.get_json()
    return body


def test_claim_by_anonymous_upgrade_confirmed_by_the_victim_keeps_nothing_of_the_attacker(client, run_jobs,
                                                                                          google):
    attacker = anonymous_claim(client, "victim@example.test")
    run_jobs()
    page = client.get(path_of(last_link("victim@example.test")), headers=BROWSER)  # the unrequested mail
    assert page.status_code == 200 and "were removed" in page.get_data(as_text=True)
    assert_error(client.get("/v1/me", headers=bearer(attacker)), 401, "account_claimed")
    assert_error(client.post("/v1/auth/refresh", json={"refresh_token": attacker["refresh_token"]}),
                 401, "account_claimed")
    assert_error(client.post("/v1/auth/login", json={"email": "victim@example.test", "password": ATTACKER_PASSWORD}),
                 401, "invalid_credentials")
    # Later the victim signs in with Google: the account is theirs alone.
    victim = client.post("/v1/auth/social/google", json={"id_token": google.id_token(
        sub="g-victim", aud=GOOGLE_AUD, email="victim@example.test")})
    assert victim.status_code == 200 and victim.get_json()["user"]["id"] == attacker["user"]["id"]
    assert_error(client.post("/v1/auth/login", json={"email": "victim@example.test", "password": ATTACKER_PASSWORD}),
                 401, "invalid_credentials")
    [event] = db.session.scalars(select(SecurityEvent).where(SecurityEvent.kind == "unproven_claim_voided"))
    assert event.details["proof"] == "verification_link" and "password" in event.details["removed"]
    run_jobs()
    assert "We secured your account" in [m.subject for m in [last_mail("victim@example.test")]]


def test_claim_confirmed_in_its_own_signed_in_app_keeps_password_and_session(client, run_jobs):
    mine = anonymous_claim(client, "me@example.test")
    run_jobs()
    token = last_link("me@example.test").split("token=", 1)[1]
    answer = client.post("/v1/auth/verify-email", headers=bearer(mine), json={"token": token})
    assert answer.status_code == 200 and answer.get_json()["status"] == "verified"
    assert client.get("/v1/me", headers=bearer(mine)).get_json()["email_verified"] is True
    assert client.post("/v1/auth/login", json={"email": "me@example.test", "password": ATTACKER_PASSWORD}
                       ).status_code == 200


def test_claim_by_registration_never_signed_in_keeps_its_password_on_verification(client, run_jobs):
    client.post("/v1/auth/register", json={"email": "plain@example.test", "password": PASSWORD})
    run_jobs()
    assert client.get(path_of(last_link("plain@example.test"))).get_json()["status"] == "verified"
    assert client.post("/v1/auth/login", json={"email": "plain@example.test", "password": PASSWORD}
                       ).status_code == 200


def test_provider_verified_email_takes_an_unverified_account_and_voids_the_squatter(client, google, make_user,
                                                                                    auth_headers, app,
                                                                                    monkeypatch):
    monkeypatch.setitem(app.config, "AUTH_REQUIRE_VERIFIED_EMAIL", False)
    squatter = make_user(email="owner@example.test", verified=False)
    squatter_headers = auth_headers(squatter)
    response = client.post("/v1/auth/social/google", json={"id_token": google.id_token(
        sub="g-owner", aud=GOOGLE_AUD, email="owner@example.test")})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["user"]["id"] == str(squatter.id)
    assert response.get_json()["user"]["email_verified"] is True
    assert_error(client.get("/v1/me", headers=squatter_headers), 401, "account_claimed")
    assert_error(client.post("/v1/auth/login", json={"email": "owner@example.test", "password": PASSWORD}),
                 401, "invalid_credentials")
    assert client.get("/v1/me", headers=bearer(response.get_json())).status_code == 200


def test_reset_link_on_an_unverified_claim_removes_the_claimants_two_factor(client, run_jobs):
    attacker = anonymous_claim(client, "mfa-victim@example.test")
    enable_totp(client, bearer(attacker))  # would gate the owner's sign-in behind the attacker's phone
    client.post("/v1/auth/password-reset/request", json={"email": "mfa-victim@example.test"})
    run_jobs()
    token = last_link("mfa-victim@example.test").split("token=", 1)[1]
    new_password = "the owner's own new passphrase"
    assert client.post("/v1/auth/password-reset", json={"token": token, "password": new_password}
                       ).status_code == 204
    login = client.post("/v1/auth/login", json={"email": "mfa-victim@example.test", "password": new_password})
    assert login.status_code == 200 and "access_token" in login.get_json()
    assert db.session.get(User, login.get_json()["user"]["id"]).email_verified_at is not None
