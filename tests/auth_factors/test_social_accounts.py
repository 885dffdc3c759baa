"""Accounts behind Google/Apple sign-in: creation, linking by verified email, takeover refusal, unlinking."""
from __future__ import annotations

from sqlalchemy import func, select

from backend.auth.factors.models import SocialIdentity
from backend.auth.models import User
from backend.extensions import db
from tests.auth.conftest import PASSWORD
from tests.auth_factors.conftest import APPLE_AUD, GOOGLE_AUD
from tests.auth_factors.helpers import assert_error, bearer

RELAY = "x7k2@privaterelay.appleid.com"


def sign_in(client, provider, token, headers=None):
    return client.post(f"/v1/auth/social/{provider}", json={"id_token": token}, headers=headers or {})


def identities(client, headers):
    response = client.get("/v1/auth/identities", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_social_sign_in_same_subject_returns_same_account(client, google):
    first = sign_in(client, "google", google.id_token(sub="g-7", aud=GOOGLE_AUD, email="gail@example.test"))
    second = sign_in(client, "google", google.id_token(sub="g-7", aud=GOOGLE_AUD, email="gail@example.test"))
    assert first.get_json()["user"]["id"] == second.get_json()["user"]["id"]
    assert db.session.scalar(select(func.count()).select_from(User).where(User.email == "gail@example.test")) == 1


def test_social_sign_in_keyed_by_subject_not_email(client, google):
    first = sign_in(client, "google", google.id_token(sub="g-a", aud=GOOGLE_AUD, email="old@example.test"))
    moved = sign_in(client, "google", google.id_token(sub="g-a", aud=GOOGLE_AUD, email="new@example.test"))
    assert moved.get_json()["user"]["id"] == first.get_json()["user"]["id"]


def test_social_sign_in_verified_email_links_verified_account(client, google, make_user):
    owner = make_user(email="vera@example.test", verified=True)
    response = sign_in(client, "google", google.id_token(sub="g-vera", aud=GOOGLE_AUD, email="VERA@example.test"))
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["user"]["id"] == str(owner.id)
    assert [i["provider"] for i in identities(client, bearer(response.get_json()))] == ["google"]


def test_social_sign_in_unverified_provider_email_does_not_take_an_unverified_account(client, google, make_user):
    victim = make_user(email="pre@example.test", verified=False)
    token = google.id_token(sub="g-pre", aud=GOOGLE_AUD, email="pre@example.test", email_verified=False)
    error = assert_error(sign_in(client, "google", token), 409, "account_exists_unverified")
    assert error["details"] == {"provider": "google"}
    assert db.session.scalar(select(func.count()).select_from(SocialIdentity)) == 0
    db.session.refresh(victim)
    assert victim.email_verified_at is None and victim.password_hash is not None


def test_social_sign_in_unverified_provider_email_does_not_link(client, google, make_user):
    make_user(email="taken@example.test", verified=True)
    token = google.id_token(sub="g-unv", aud=GOOGLE_AUD, email="taken@example.test", email_verified=False)
    assert_error(sign_in(client, "google", token), 409, "account_exists_link_required")


def test_social_sign_in_unverified_provider_email_creates_account_without_it(client, google):
    token = google.id_token(sub="g-new", aud=GOOGLE_AUD, email="maybe@example.test", email_verified=False)
    body = sign_in(client, "google", token).get_json()
    assert body["user"]["email"] is None and body["user"]["email_verified"] is False


def test_apple_sign_in_without_email_later_finds_the_same_account(client, apple):
    first = sign_in(client, "apple", apple.id_token(sub="001.ann", aud=APPLE_AUD, email=RELAY, private_email=True))
    later = sign_in(client, "apple", apple.id_token(sub="001.ann", aud=APPLE_AUD))  # Apple omits email now
    assert first.status_code == later.status_code == 200
    assert later.get_json()["user"]["id"] == first.get_json()["user"]["id"]
    assert later.get_json()["user"]["email"] == RELAY
    [identity] = identities(client, bearer(later.get_json()))
    assert identity == {**identity, "provider": "apple", "email": RELAY, "is_private_email": True}


def test_suspended_account_social_sign_in_is_403(client, google, make_user):
    make_user(email="sus@example.test", status="suspended")
    assert_error(sign_in(client, "google", google.id_token(sub="g-s", aud=GOOGLE_AUD, email="sus@example.test")),
                 403, "account_suspended")


def test_link_identity_signed_in_adds_provider(client, google, make_user, auth_headers):
    user = make_user(email="link@example.test")
    headers = auth_headers(user)
    response = client.post("/v1/auth/identities/google", headers=headers,
                           json={"id_token": google.id_token(sub="g-link", aud=GOOGLE_AUD, email="other@example.test")})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["provider"] == "google"
    assert "subject" not in response.get_json() and "id_token" not in response.get_json()
    signed = sign_in(client, "google", google.id_token(sub="g-link", aud=GOOGLE_AUD))
    assert signed.get_json()["user"]["id"] == str(user.id)


def test_link_identity_owned_by_another_account_is_409(client, google, make_user, auth_headers):
    sign_in(client, "google", google.id_token(sub="g-owned", aud=GOOGLE_AUD, email="first@example.test"))
    headers = auth_headers(make_user())
    response = client.post("/v1/auth/identities/google", headers=headers,
                           json={"id_token": google.id_token(sub="g-owned", aud=GOOGLE_AUD)})
    assert_error(response, 409, "identity_in_use")


def test_link_identity_second_account_of_same_provider_is_409(client, google, make_user, auth_headers):
    headers = auth_headers(make_user())
    for sub, status in (("g-one", 201), ("g-two", 409)):
        response = client.post("/v1/auth/identities/google", headers=headers,
                               json={"id_token": google.id_token(sub=sub, aud=GOOGLE_AUD)})
        assert response.status_code == status


def test_link_identity_with_invalid_token_is_401(client, google, make_user, auth_headers):
    response = client.post("/v1/auth/identities/google", headers=auth_headers(make_user()),
                           json={"id_token": google.id_token(sub="g", aud="not-ours")})
    assert_error(response, 401, "id_token_invalid")


def test_identity_routes_signed_out_are_401(client):
    assert_error(client.get("/v1/auth/identities"), 401, "not_authenticated")
    assert_error(client.post("/v1/auth/identities/google", json={"id_token": "x"}), 401, "not_authenticated")
    assert_error(client.delete("/v1/auth/identities/google"), 401, "not_authenticated")


def test_unlink_identity_with_password_left_succeeds(client, google, make_user, auth_headers):
    user = make_user()
    headers = auth_headers(user)
    client.post("/v1/auth/identities/google", headers=headers,
                json={"id_token": google.id_token(sub="g-un", aud=GOOGLE_AUD)})
    assert client.delete("/v1/auth/identities/google", headers=headers).status_code == 204
    assert identities(client, headers) == []
    assert_error(client.delete("/v1/auth/identities/google", headers=headers), 404, "identity_not_found")


def test_unlink_last_sign_in_method_is_409(client, apple):
    body = sign_in(client, "apple", apple.id_token(sub="001.only", aud=APPLE_AUD, email=RELAY,
                                                     private_email=True)).get_json()
    # a relay address only forwards while the Apple link exists, so it is no way back in
    assert_error(client.delete("/v1/auth/identities/apple", headers=bearer(body)), 409, "last_sign_in_method")
    assert len(identities(client, bearer(body))) == 1


def test_unlink_with_verified_real_email_left_succeeds(client, google):
    token = google.id_token(sub="g-real", aud=GOOGLE_AUD, email="real@example.test")
    body = sign_in(client, "google", token).get_json()
    assert client.delete("/v1/auth/identities/google", headers=bearer(body)).status_code == 204


def test_social_sign_in_is_under_the_auth_lockout_per_client_address(client, google, app, monkeypatch):
    monkeypatch.setitem(app.config, "AUTH_LOGIN_LIMIT_PER_IP", 3)
    for _ in range(3):  # forged tokens still count: the limit runs before the signature is checked
        assert_error(sign_in(client, "google", "not.a.jwt"), 401, "id_token_invalid")
    error = assert_error(sign_in(client, "google", google.id_token(sub="g-late", aud=GOOGLE_AUD)),
                         429, "too_many_attempts")
    assert error["message"]


def test_token_answers_are_never_cached(client, google, make_user, auth_headers):
    response = sign_in(client, "google", google.id_token(sub="g-cache", aud=GOOGLE_AUD, email="c@example.test"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    user = make_user()
    for answer in (client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}),
                   client.post("/v1/auth/refresh", json={"refresh_token": response.get_json()["refresh_token"]}),
                   client.post("/v1/auth/login", json={"email": user.email, "password": "wrong"}),
                   client.post("/v1/me/password", headers=auth_headers(user), json={
                       "current_password": PASSWORD, "new_password": "another fine passphrase"})):
        assert answer.headers["Cache-Control"] == "no-store", answer.get_json()
    assert "no-store" not in client.get("/v1/me", headers=auth_headers(user)).headers.get("Cache-Control", "")
