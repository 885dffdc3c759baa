"""Fixtures of the passkey tests: a relying party from config, phones with software authenticators."""
from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.auth.conftest import auth_headers, make_user, smtp_app, smtp_server  # noqa: F401 - shared fixtures
from tests.fakes.passkey_authenticator import SoftAuthenticator

RP_ID = "example.test"
ORIGIN = "https://example.test"
# The Android app's signing certificate, as the Play Console prints its SHA-256.
ANDROID_CERT = "14:6D:E9:83:C5:73:06:50:D8:EE:B9:95:2F:34:FC:64:16:A0:83:42:E6:1D:BE:A8:8A:04:96:B2:3F:CF:44:E5"


@pytest.fixture
def relying_party(app: Flask, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The app as the relying party example.test: web origin, iOS app and Android app from config."""
    monkeypatch.setitem(app.config, "PASSKEY_RP_ID", RP_ID)
    monkeypatch.setitem(app.config, "PASSKEY_ORIGINS", [ORIGIN])
    monkeypatch.setitem(app.config, "IOS_APP_IDS", ["ABCDE12345.com.example.app"])
    monkeypatch.setitem(app.config, "ANDROID_APP_PACKAGE", "com.example.app")
    monkeypatch.setitem(app.config, "ANDROID_APP_CERT_SHA256", [bytes.fromhex(ANDROID_CERT.replace(":", ""))])
    return app


@pytest.fixture
def phone(relying_party: Flask) -> SoftAuthenticator:
    """A phone whose platform authenticator answers for the web origin (and an iOS app on the same domain)."""
    return SoftAuthenticator(origin=ORIGIN)


def add_passkey(client: Any, headers: dict[str, str], phone: SoftAuthenticator, *, device_name: str = "iPhone",
                **options_body: Any) -> Any:
    """Run the whole registration ceremony through the API; return the final response."""
    started = client.post("/v1/auth/passkeys/registration/options", headers=headers, json=options_body)
    assert started.status_code == 200, started.get_json()
    credential = phone.create(started.get_json()["options"])
    return client.post("/v1/auth/passkeys", headers=headers, json={"credential": credential,
                                                                    "device_name": device_name})


def sign_in_options(client: Any, email: str | None = None) -> dict[str, Any]:
    """The sign-in options for an account (``email``) or for a discoverable passkey."""
    response = client.post("/v1/auth/passkeys/sign-in/options", json={"email": email} if email else {})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["options"]


def passkey_sign_in(client: Any, phone: SoftAuthenticator, *, email: str | None = None, **body: Any) -> Any:
    """A whole sign-in: options, the phone's assertion, the sign-in request."""
    assertion = phone.get(sign_in_options(client, email))
    return client.post("/v1/auth/passkeys/sign-in", json={"credential": assertion, **body})
