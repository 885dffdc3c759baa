"""Cookie sessions only where a browser needs them (the console), never on the API.

The /v1 API authenticates with bearer tokens; opening and signing a cookie session on
each API request cost about 7% of a cached GET /v1/me (bench/profile_me.py).
"""
from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

API_PREFIXES = ("/v1/", "/.well-known/")


class ConsoleOnlySessionInterface(SecureCookieSessionInterface):
    """Signed cookie sessions, skipped for API paths (they get an empty null session)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(API_PREFIXES):
            return self.make_null_session(app)
        return super().open_session(app, request)
