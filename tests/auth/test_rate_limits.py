"""Limits that hold (OWASP API4): only a valid token leaves the per-address limit, for a per-user one."""
from __future__ import annotations

import pytest

from tests.auth.conftest import PASSWORD


@pytest.fixture
def tight_limits(app, monkeypatch):
    """2 requests a minute per address, 3 per signed-in user (each app reads them per request)."""
    monkeypatch.setitem(app.config, "RATELIMIT_DEFAULT", "2 per minute")
    monkeypatch.setitem(app.config, "RATELIMIT_PER_USER", "3 per minute")


def _signed_in(app, make_user, auth_headers):
    with app.app_context():
        return auth_headers(make_user())


def test_bogus_bearer_counts_against_the_address_limit(client, tight_limits):
    bogus = {"Authorization": "Bearer x"}
    me = [client.get("/v1/me", headers=bogus) for _ in range(3)]
    assert [r.status_code for r in me] == [401, 401, 429]
    assert me[2].get_json()["error"]["code"] == "rate_limited" and int(me[2].headers["Retry-After"]) >= 1


def test_bogus_bearer_on_a_public_read_gets_429(client, tight_limits):
    """The review's case: GETs of /v1/auth/verify-email with `Bearer x` were never limited."""
    codes = [client.get("/v1/auth/verify-email?token=nope", headers={"Authorization": "Bearer x"}).status_code
             for _ in range(3)]
    assert codes[-1] == 429 and 429 not in codes[:2]


def test_valid_bearer_on_a_public_read_still_counts_per_address(client, tight_limits, make_user, auth_headers):
    """A public route signs nobody in, so a token there earns no exemption."""
    headers = auth_headers(make_user())
    codes = [client.get("/.well-known/jwks.json", headers=headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_valid_bearer_leaves_the_address_limit_for_the_per_user_limit(client, tight_limits, make_user,
                                                                      auth_headers):
    headers = auth_headers(make_user())
    answers = [client.get("/v1/me", headers=headers) for _ in range(5)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429, 429]
    assert [r.headers["RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    refused = answers[3]
    assert refused.get_json()["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1


def test_per_user_limit_is_each_users_own(client, tight_limits, make_user, auth_headers):
    first, second = auth_headers(make_user()), auth_headers(make_user())
    assert [client.get("/v1/me", headers=first).status_code for _ in range(4)][-1] == 429
    # Same address, another account: its own budget, and the address budget is untouched by reads.
    assert [client.get("/v1/me", headers=second).status_code for _ in range(3)] == [200, 200, 200]


def test_writes_count_per_address_and_per_user(client, tight_limits, make_user, auth_headers):
    headers = auth_headers(make_user())
    patches = [client.patch("/v1/me", json={"first_name": "Ada"}, headers=headers).status_code for _ in range(3)]
    assert patches == [200, 200, 429]  # the address's 2 a minute
    # The two writes also spent 2 of the user's 3: one read left.
    assert [client.get("/v1/me", headers=headers).status_code for _ in range(2)] == [200, 429]


def test_per_user_limit_spares_other_addresses_budget(client, tight_limits, make_user):
    """Login and other anonymous routes keep their per-address budget however much a user reads."""
    user = make_user()
    body = client.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD}).get_json()
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert [client.get("/v1/me", headers=headers).status_code for _ in range(3)] == [200, 200, 200]
    assert client.post("/v1/auth/login", json={"email": user.email, "password": "wrong"}).status_code == 401
    assert client.post("/v1/auth/login", json={"email": user.email, "password": "wrong"}).status_code == 429
