"""Rate-limit key and the standard ``RateLimit-*`` / ``Retry-After`` headers.

Policy when Redis is down: general API limits fail open (the limiter swallows the
error and logs it); account-security limits in the auth domain fail closed.
"""
from __future__ import annotations

import math
import time

from flask import Flask, Response, request


def rate_limit_key() -> str:
    """Client address as seen after ProxyFix (the real one behind nginx)."""
    return request.remote_addr or "unknown"


def _rate_limit_headers(response: Response) -> Response:
    from backend.extensions import limiter  # bound at request time, never at import

    current = limiter.current_limit
    if current is None:
        return response
    reset_in = max(0, math.ceil(current.reset_at - time.time()))
    response.headers["RateLimit-Limit"] = str(current.limit.amount)
    response.headers["RateLimit-Remaining"] = str(max(0, current.remaining))
    response.headers["RateLimit-Reset"] = str(reset_in)
    response.headers["RateLimit-Policy"] = (
        f"{current.limit.amount};w={current.limit.get_expiry()}"
    )
    if response.status_code == 429:
        response.headers.setdefault("Retry-After", str(max(1, reset_in)))  # keep a more specific one
    return response


def register_rate_limit_headers(app: Flask) -> None:
    """Add IETF RateLimit headers to every limited response."""
    app.after_request(_rate_limit_headers)
