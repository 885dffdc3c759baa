"""Fixtures of the sign-in factor tests: local Google/Apple providers, account helpers."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from tests.auth.conftest import auth_headers, make_user, smtp_app, smtp_server  # noqa: F401 - shared fixtures
from tests.fakes.oidc_provider import OidcProvider

GOOGLE_AUD = "1234-android.apps.googleusercontent.com"
APPLE_AUD = "com.example.groundwork"


@pytest.fixture
def google(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[OidcProvider]:
    """A Google-like provider the app's production fetcher is pointed at (fresh keys and cache per test)."""
    with OidcProvider("google") as provider:
        monkeypatch.setitem(app.config, "GOOGLE_JWKS_URL", provider.jwks_url)
        monkeypatch.setitem(app.config, "GOOGLE_CLIENT_IDS", ["1234-ios.apps.googleusercontent.com", GOOGLE_AUD])
        yield provider


@pytest.fixture
def apple(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Iterator[OidcProvider]:
    """An Apple-like provider (string booleans, hashed nonce) behind APPLE_JWKS_URL."""
    with OidcProvider("apple") as provider:
        monkeypatch.setitem(app.config, "APPLE_JWKS_URL", provider.jwks_url)
        monkeypatch.setitem(app.config, "APPLE_CLIENT_IDS", [APPLE_AUD])
        yield provider

