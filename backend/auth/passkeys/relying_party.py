"""Who passkeys are bound to: the relying-party ID, the origins allowed, and the association files.

A passkey belongs to one RP ID (a domain). Browsers report the page's origin; an iOS app
that lists the domain under ``webcredentials`` in its associated domains reports
``https://<rp id>``; an Android app reports ``android:apk-key-hash:<base64url SHA-256 of
its signing certificate>``. Every origin comes from config (``PASSKEY_*``, ``ANDROID_APP_CERT_SHA256``); the two
``.well-known`` files that let the phone trust the app for the domain
(``backend.auth.links.app_association``) are built from the same settings, so the app, the
domain and the server cannot disagree.
"""
from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

from flask import current_app


def _public_url() -> Any:
    return urlsplit(current_app.config["PUBLIC_BASE_URL"])


def rp_id() -> str:
    """The relying-party ID: ``PASSKEY_RP_ID``, else the host of ``PUBLIC_BASE_URL``."""
    return current_app.config["PASSKEY_RP_ID"] or (_public_url().hostname or "localhost")


def rp_name() -> str:
    """The name the phone shows beside a saved passkey."""
    return current_app.config["PASSKEY_RP_NAME"]


def android_origin(fingerprint: bytes) -> str:
    """The origin an Android app signed with this certificate reports (``android:apk-key-hash:``)."""
    return "android:apk-key-hash:" + base64.urlsafe_b64encode(fingerprint).rstrip(b"=").decode()


def allowed_origins() -> list[str]:
    """Every origin a ceremony may come from: web/iOS origins, then one per Android certificate."""
    config = current_app.config
    web = list(config["PASSKEY_ORIGINS"])
    if not web:
        url = _public_url()
        web = [f"{url.scheme}://{url.netloc}"]
    return web + [android_origin(f) for f in config["ANDROID_APP_CERT_SHA256"]]
