"""The files that tie the iOS and Android apps to this domain: passkeys and email links.

``/.well-known/apple-app-site-association``: ``webcredentials`` lets the iOS apps use the
domain's passkeys; ``applinks`` opens the account email links (verification, email
change, reset) in the app, which then redeems them with its own session.
``/.well-known/assetlinks.json``: the Android app (package and certificate fingerprints)
may use the domain's sign-in credentials and open its links.
"""
from __future__ import annotations

from typing import Any

from flask import current_app

# The links in account mails: opened by the app when it is installed, else by a browser.
EMAIL_LINK_PATHS = ("/v1/auth/verify-email", "/v1/auth/confirm-email-change", "/v1/auth/password-reset")


def apple_app_site_association() -> dict[str, Any] | None:
    """The iOS apps' passkey and universal-link association, or None when no app is configured."""
    apps = list(current_app.config["IOS_APP_IDS"])
    if not apps:
        return None
    return {
        "webcredentials": {"apps": apps},
        "applinks": {"details": [{"appIDs": apps, "components": [{"/": path} for path in EMAIL_LINK_PATHS]}]},
    }


def asset_links() -> list[dict[str, Any]] | None:
    """The Android app's Digital Asset Links statement, or None when no app is configured."""
    config = current_app.config
    if not (config["ANDROID_APP_PACKAGE"] and config["ANDROID_APP_CERT_SHA256"]):
        return None
    fingerprints = [":".join(f"{b:02X}" for b in f) for f in config["ANDROID_APP_CERT_SHA256"]]
    return [{
        "relation": ["delegate_permission/common.handle_all_urls", "delegate_permission/common.get_login_creds"],
        "target": {"namespace": "android_app", "package_name": config["ANDROID_APP_PACKAGE"],
                   "sha256_cert_fingerprints": fingerprints},
    }]
