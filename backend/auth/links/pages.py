"""What a person sees on opening an account email link in a browser: a plain page, or the app.

API clients (JSON preferred, the default) get the usual JSON answers. A browser (HTML
preferred) gets a small self-contained HTML page saying what happened (confirmed,
expired, already used, ...), or, when ``EMAIL_ACTION_URL`` is set, a 303 to that
universal/app link with ``mode`` and ``status`` in the query, like Firebase's action links.
When the app is installed, the phone opens the link in the app directly
(``backend.auth.links.app_association``), and the app redeems it with its own session.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Response, current_app, make_response, redirect, render_template_string, request

from backend.common.errors import DomainError

# status → (HTTP status, page title); any other failure shows as link_invalid.
OUTCOMES = {
    "verified": (200, "Email address confirmed"),
    "verified_secured": (200, "Email address confirmed"),
    "changed": (200, "Email address changed"),
    "valid": (200, "Choose a new password"),
    "link_used": (410, "This link was already used"),
    "link_expired": (410, "This link has expired"),
    "link_invalid": (400, "This link is not valid"),
    "email_taken": (409, "This address is already in use"),
    "too_many_attempts": (429, "Too many attempts"),
}
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}</title>
<style>body{font:17px/1.5 system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1.2rem;color:#1d1d1f}
h1{font-size:1.5rem}</style>
</head><body><h1>{{ title }}</h1><p>{{ message }}</p></body></html>
"""


def wants_page() -> bool:
    """Whether the caller is a browser: it prefers HTML to JSON (API clients and ties get JSON)."""
    accept = request.accept_mimetypes
    return accept.quality("text/html") > accept.quality("application/json")


def outcome_page(*, mode: str, status: str, message: str, **extra: str) -> Response:
    """The redirect to ``EMAIL_ACTION_URL``, or the plain page, for one link outcome."""
    target = current_app.config["EMAIL_ACTION_URL"]
    if target:
        query = urlencode({"mode": mode, "status": status, **extra})
        response = redirect(f"{target}{'&' if '?' in target else '?'}{query}", code=303)
    else:
        code, title = OUTCOMES.get(status, OUTCOMES["link_invalid"])
        response = make_response(render_template_string(_PAGE, title=title, message=message), code)
        response.headers["Content-Type"] = "text/html; charset=utf-8"
        response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the link's token is in the URL
    return response


def link_page(mode: str, act: Callable[[], dict[str, Any]], **extra: str) -> Response:
    """Run the link's action for a browser and answer with its outcome page (errors included)."""
    try:
        result = act()
    except DomainError as exc:
        status = exc.code if exc.code in OUTCOMES else "link_invalid"
        return outcome_page(mode=mode, status=status, message=exc.message)
    return outcome_page(mode=mode, status=result["status"], message=result["message"], **extra)
