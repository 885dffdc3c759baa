"""The production JWKS fetcher against the local provider: caching, refetching, outages.

The cache takes its clock as a parameter, so expiry is tested by moving that clock, not
by sleeping.
"""
from __future__ import annotations

import socket

import pytest

from backend.auth.factors.id_tokens import UNKNOWN_KID_REFETCH_S, JwksCache
from backend.common.errors import ServiceUnavailable
from tests.fakes.oidc_provider import OidcProvider


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_jwks_cache_within_max_age_does_not_refetch(app, clock):
    with app.app_context(), OidcProvider("google", max_age=120) as provider:
        cache = JwksCache(provider.jwks_url, clock=clock)
        kid = provider.current_key.kid
        assert cache.key_for(kid) is not None
        clock.now += 119
        assert cache.key_for(kid) is not None
        assert provider.jwks_requests == 1
        clock.now += 2  # past max-age
        assert cache.key_for(kid) is not None
        assert provider.jwks_requests == 2


def test_jwks_cache_unknown_kid_refetches_at_most_once_a_minute(app, clock):
    with app.app_context(), OidcProvider("google") as provider:
        cache = JwksCache(provider.jwks_url, clock=clock)
        assert cache.key_for(provider.current_key.kid) is not None
        assert cache.key_for("forged-1") is None
        assert cache.key_for("forged-2") is None
        clock.now += UNKNOWN_KID_REFETCH_S - 1
        assert cache.key_for("forged-3") is None
        assert provider.jwks_requests == 2  # the first fetch, then one refetch for unknown kids
        clock.now += 1
        assert cache.key_for("forged-4") is None
        assert provider.jwks_requests == 3


def test_jwks_cache_finds_a_rotated_key_by_refetching(app, clock):
    with app.app_context(), OidcProvider("apple") as provider:
        cache = JwksCache(provider.jwks_url, clock=clock)
        old = provider.current_key.kid
        assert cache.key_for(old) is not None
        provider.rotate(keep_old=False)
        clock.now += 5  # well inside max-age: only the unknown kid triggers the fetch
        assert cache.key_for(provider.current_key.kid) is not None
        assert provider.jwks_requests == 2
        assert cache.key_for(old) is None  # dropped by the provider, dropped here


def test_jwks_cache_keeps_last_good_keys_when_the_provider_fails(app, clock):
    with app.app_context(), OidcProvider("google", max_age=60) as provider:
        cache = JwksCache(provider.jwks_url, clock=clock)
        kid = provider.current_key.kid
        assert cache.key_for(kid) is not None
        provider.fail_status = 503
        clock.now += 61
        assert cache.key_for(kid) is not None
        clock.now += 1  # a failed fetch is not retried on every request
        assert cache.key_for(kid) is not None
        assert provider.jwks_requests == 2


def test_jwks_cache_unreachable_provider_without_keys_raises_503(app, clock):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once closed
    with app.app_context():
        cache = JwksCache(f"http://127.0.0.1:{port}/jwks", clock=clock, timeout=1.0)
        with pytest.raises(ServiceUnavailable) as raised:
            cache.key_for("any")
    assert raised.value.code == "identity_provider_unavailable"


def test_jwks_cache_skips_keys_with_disallowed_algorithms(app, clock):
    with app.app_context(), OidcProvider("google") as provider:
        provider.keys[0].jwk["alg"] = "HS256"
        provider.rotate()  # a good RS256 key next to the bad one
        cache = JwksCache(provider.jwks_url, clock=clock)
        assert cache.key_for(provider.keys[1].kid) is None
        assert cache.key_for(provider.keys[0].kid) is not None
