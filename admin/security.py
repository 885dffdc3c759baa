"""Console hardening: a Content-Security-Policy with a per-request nonce, CSRF on every POST.

Scripts run only from this site's own files or with the request's nonce (Flask-Admin's
templates carry it); no inline event handlers, no CDN. Charts are SVG images (data:
URLs), which never run scripts. Every POST under /admin must carry the session's CSRF
token (Flask-WTF), checked before any view runs; the sign-in pages check theirs in
their forms.
"""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, current_app, g, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.wrappers import Response

CONSOLE_PREFIX = "/admin"
_csrf = CSRFProtect()


def csp_nonce() -> str:
    """This request's script nonce (the same for every template it renders)."""
    # Kept on the request, not on g: an app context can outlive one request (tests hold one).
    nonce = getattr(request, "_console_csp_nonce", None)
    if nonce is None:
        nonce = request._console_csp_nonce = secrets.token_urlsafe(16)  # type: ignore[attr-defined]
    return nonce


def storage_origins(config: dict) -> str:
    """Where signed media URLs point (moderators see reported images and video from there)."""
    origins = set()
    for url in (config.get("PUBLIC_BASE_URL"), config.get("S3_ENDPOINT_URL") if config.get(
            "STORAGE_BACKEND") == "s3" else None):
        parts = urlsplit(url or "")
        if parts.scheme in ("http", "https") and parts.netloc:
            origins.add(f"{parts.scheme}://{parts.netloc}")
    if config.get("STORAGE_BACKEND") == "s3" and not config.get("S3_ENDPOINT_URL"):
        origins.add("https://*.amazonaws.com")  # AWS itself: virtual-hosted and path-style bucket URLs
    return " ".join(sorted(origins))


def content_security_policy(nonce: str) -> str:
    """The console's policy: own files, nonce'd scripts, SVG charts as data: images, media from storage."""
    media = storage_origins(current_app.config)
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        "script-src-attr 'none'",
        # Bootstrap and Flask-Admin's templates set a few style attributes.
        "style-src 'self' 'unsafe-inline'",
        f"img-src 'self' data: {media}".rstrip(),
        f"media-src 'self' {media}".rstrip(),
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))


def _protect_posts() -> None:
    if not request.path.startswith(CONSOLE_PREFIX):
        return
    # Flask-WTF caches the signed token on g; when an app context spans several requests
    # (tests hold one) a token cached before a sign-in's session.clear() would be reused.
    g.pop("csrf_token", None)
    if request.blueprint != "staff_login":
        _csrf.protect()  # raises CSRFError (400) on a missing or stale token


def _secure_headers(response: Response) -> Response:
    if request.path.startswith(CONSOLE_PREFIX):
        response.headers["Content-Security-Policy"] = content_security_policy(csp_nonce())
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        # same-origin, not no-referrer: Flask-WTF checks the Referer of HTTPS form posts.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cache-Control"] = "no-store"  # staff data never sits in a shared cache
    return response


def _csrf_failed(exc: CSRFError) -> tuple[str, int]:
    return render_template("console/error.html", status=400, message="The form expired or was not sent from "
                           "the console; go back, reload the page and try again."), 400


def init_console_security(app: Flask) -> None:
    """CSRF on console POSTs, security headers on console pages."""
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # the API (bearer tokens) has no CSRF; only /admin is checked
    app.config["WTF_CSRF_TIME_LIMIT"] = None  # the token lives as long as the 8-hour console session
    _csrf.init_app(app)
    app.before_request(_protect_posts)
    app.after_request(_secure_headers)
    app.register_error_handler(CSRFError, _csrf_failed)
