"""Google/Apple ID tokens through POST /v1/auth/social/*, with the production fetcher and a local provider."""
from __future__ import annotations

import time
import uuid

import pytest

from tests.auth_factors.conftest import APPLE_AUD, GOOGLE_AUD
from tests.auth_factors.helpers import assert_error, forge


def sign_in(client, provider, token, nonce=None, headers=None):
    body = {"id_token": token, "device_name": "Pixel", "platform": "android"}
    if nonce is not None:
        body["nonce"] = nonce
    return client.post(f"/v1/auth/social/{provider}", json=body, headers=headers or {})


def rejected(response, check):
    error = assert_error(response, 401, "id_token_invalid")
    assert error["details"]["check"] == check
    return error


def test_google_sign_in_valid_token_returns_tokens(client, google):
    response = sign_in(client, "google", google.id_token(sub="g-1", aud=GOOGLE_AUD, email="ann@example.test"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["access_token"] and body["refresh_token"]
    assert body["user"]["email"] == "ann@example.test" and body["user"]["email_verified"] is True


@pytest.mark.parametrize("issuer", ["accounts.google.com", "https://accounts.google.com"])
def test_google_sign_in_either_google_issuer_is_accepted(client, google, issuer):
    claims = google.claims(sub=f"g-{issuer}", aud=GOOGLE_AUD)
    claims["iss"] = issuer
    assert sign_in(client, "google", google.sign(claims)).status_code == 200


def test_social_sign_in_wrong_audience_is_401(client, google):
    rejected(sign_in(client, "google", google.id_token(sub="g", aud="someone-elses-app")), "audience")


def test_social_sign_in_wrong_issuer_is_401(client, google, apple):
    claims = google.claims(sub="g", aud=GOOGLE_AUD)
    claims["iss"] = "https://evil.example"
    rejected(sign_in(client, "google", google.sign(claims)), "issuer")
    # an Apple token presented as Google's fails on issuer/keys, never passes
    apple_claims = apple.claims(sub="a", aud=GOOGLE_AUD)
    response = sign_in(client, "google", apple.sign(apple_claims))
    assert_error(response, 401, "id_token_invalid")


def test_social_sign_in_expired_token_is_401(client, google):
    token = google.id_token(sub="g", aud=GOOGLE_AUD, issued_at=time.time() - 7200, lifetime=3600)
    rejected(sign_in(client, "google", token), "expired")


def test_social_sign_in_token_issued_in_the_future_is_401(client, google):
    token = google.id_token(sub="g", aud=GOOGLE_AUD, issued_at=time.time() + 600)
    rejected(sign_in(client, "google", token), "issued_at")


def test_social_sign_in_small_clock_skew_is_tolerated(client, google):
    token = google.id_token(sub="g-skew", aud=GOOGLE_AUD, issued_at=time.time() + 20)
    assert sign_in(client, "google", token).status_code == 200


def test_social_sign_in_bad_signature_is_401(client, google):
    claims = google.claims(sub="g", aud=GOOGLE_AUD)
    forged = google.sign(claims, key=google.stranger_key(), kid=google.current_key.kid)  # published kid, other key
    rejected(sign_in(client, "google", forged), "signature")
    genuine = google.id_token(sub="g", aud=GOOGLE_AUD).split(".")
    tampered = google.claims(sub="someone-else", aud=GOOGLE_AUD)
    payload = forge({"alg": "RS256"}, tampered).split(".")[1]
    rejected(sign_in(client, "google", f"{genuine[0]}.{payload}.{genuine[2]}"), "signature")


def test_social_sign_in_hs256_with_the_public_key_as_secret_is_401(client, google):
    claims = google.claims(sub="g", aud=GOOGLE_AUD)
    token = forge({"alg": "HS256", "kid": google.current_key.kid, "typ": "JWT"}, claims, hmac_key=google.public_pem())
    rejected(sign_in(client, "google", token), "algorithm")


def test_social_sign_in_alg_none_is_401(client, apple):
    claims = apple.claims(sub="a", aud=APPLE_AUD)
    for alg in ("none", "None", "NONE"):
        rejected(sign_in(client, "apple", forge({"alg": alg, "kid": apple.current_key.kid}, claims)), "algorithm")


def test_social_sign_in_garbage_token_is_401_not_500(client, google):
    for token in ("not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9..", "x" * 8000):
        assert_error(sign_in(client, "google", token), 401, "id_token_invalid")


def test_social_sign_in_unknown_kid_triggers_exactly_one_refetch(client, google):
    assert sign_in(client, "google", google.id_token(sub="g-kid", aud=GOOGLE_AUD)).status_code == 200
    assert google.jwks_requests == 1
    stranger = google.stranger_key()
    for n in range(3):
        forged = google.sign(google.claims(sub="g-kid", aud=GOOGLE_AUD), key=stranger, kid=f"unknown-{n}")
        rejected(sign_in(client, "google", forged), "unknown_key")
    assert google.jwks_requests == 2


def test_social_sign_in_after_key_rotation_still_works(client, google):
    first = sign_in(client, "google", google.id_token(sub="g-rot", aud=GOOGLE_AUD)).get_json()
    google.rotate(keep_old=False)
    again = sign_in(client, "google", google.id_token(sub="g-rot", aud=GOOGLE_AUD))
    assert again.status_code == 200
    assert again.get_json()["user"]["id"] == first["user"]["id"]
    assert google.jwks_requests == 2


def test_social_sign_in_wrong_or_missing_nonce_is_401(client, google):
    token = google.id_token(sub="g", aud=GOOGLE_AUD, nonce="n-123")
    rejected(sign_in(client, "google", token, nonce="n-999"), "nonce")
    rejected(sign_in(client, "google", token), "nonce")
    rejected(sign_in(client, "google", google.id_token(sub="g", aud=GOOGLE_AUD), nonce="n-123"), "nonce")
    assert sign_in(client, "google", token, nonce="n-123").status_code == 200


def test_apple_sign_in_compares_the_hash_of_the_raw_nonce(client, apple):
    raw = uuid.uuid4().hex
    token = apple.id_token(sub="001.apple", aud=APPLE_AUD, nonce=raw)
    import hashlib

    rejected(sign_in(client, "apple", token, nonce=hashlib.sha256(raw.encode()).hexdigest()), "nonce")
    assert sign_in(client, "apple", token, nonce=raw).status_code == 200


def test_social_sign_in_unconfigured_provider_is_400(client, google, monkeypatch, app):
    monkeypatch.setitem(app.config, "GOOGLE_CLIENT_IDS", [])
    assert_error(sign_in(client, "google", google.id_token(sub="g", aud=GOOGLE_AUD)), 400, "provider_not_configured")


def test_social_sign_in_unknown_provider_is_404(client):
    assert_error(client.post("/v1/auth/social/facebook", json={"id_token": "x"}), 404, "not_found")


def test_social_sign_in_provider_down_without_cached_keys_is_503(client, google):
    google.fail_status = 500
    assert_error(sign_in(client, "google", google.id_token(sub="g", aud=GOOGLE_AUD)), 503,
                 "identity_provider_unavailable")
