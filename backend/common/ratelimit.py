"""Rate-limit key, exemptions and the standard ``RateLimit-*`` / ``Retry-After`` headers.

Policy when Redis is down: general API limits fail open (the limiter swallows the
error and logs it); account-security limits in the auth domain fail closed.

The general per-address limit counts anonymous traffic and writes. Reads that carry a
bearer token are not counted there: they are cheap, authenticated, and would otherwise
pay Redis round trips on the hottest path (GET /v1/me); nginx's per-address limits
and each route's own limits still apply. Such reads skip flask-limiter's request hook
altogether (it spent more CPU deciding they were exempt than the rest of the request
took): that hook enforces only the default limit here, while a limit put on a view with
``limiter.limit`` is checked by the view's own wrapper and keeps applying.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import redis
from flask import Flask, Response, current_app, request
from flask_limiter import Limiter

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


def rate_limit_key() -> str:
    """Client address as seen after ProxyFix (the real one behind nginx)."""
    return request.remote_addr or "unknown"


def exempt_from_default_limits() -> bool:
    """Authenticated reads skip the general per-address limit (see module docstring)."""
    return request.method in _READS and request.headers.get("Authorization", "").startswith("Bearer ")


def _unless_authenticated_read(check: Callable[[], None]) -> Callable[[], None]:
    """flask-limiter's request hook, not run for authenticated reads (see module docstring)."""

    def check_request_limit() -> None:
        if not exempt_from_default_limits():
            check()

    return check_request_limit


def _configured_default_limit() -> str:
    """The general limit of the app serving this request (read per request, per app)."""
    return current_app.config["RATELIMIT_DEFAULT"]


def init_limiter(app: Flask) -> Limiter:
    """One limiter per app (like Admin and Api): a shared one keeps the first app's limits
    and the last app's storage, which breaks every process that builds several apps."""
    limiter = Limiter(
        key_func=rate_limit_key, headers_enabled=False, default_limits=[_configured_default_limit],
        default_limits_exempt_when=exempt_from_default_limits,
    )
    limiter.init_app(app)
    hooks = app.before_request_funcs.setdefault(None, [])
    if limiter._check_request_limit in hooks:  # absent when RATELIMIT_ENABLED is false
        hooks[hooks.index(limiter._check_request_limit)] = _unless_authenticated_read(limiter._check_request_limit)
    app.extensions["groundwork.limiter"] = limiter
    app.after_request(_rate_limit_headers)
    return limiter


def limiter_of(app: Flask | None = None) -> Limiter:
    """The limiter of ``app`` (default: the current app)."""
    return (app or current_app).extensions["groundwork.limiter"]


def _window(limiter, current) -> tuple[int, float] | None:  # noqa: ANN001 - flask-limiter internals
    """(remaining, reset timestamp) in one Redis round trip instead of two."""
    storage = limiter.storage
    if not hasattr(storage, "prefixed_key"):  # not Redis: let flask-limiter compute it
        return max(0, current.remaining), current.reset_at
    key = storage.prefixed_key(current.key)
    try:
        count, pttl = storage.get_connection().pipeline(transaction=False).get(key).pttl(key).execute()
    except redis.RedisError:
        return None
    remaining = current.limit.amount - int(count or 0)
    reset_at = time.time() + (max(pttl, 0) / 1000 if pttl and pttl > 0 else current.limit.get_expiry())
    return max(0, remaining), reset_at


def _rate_limit_headers(response: Response) -> Response:
    limiter = limiter_of()
    current = limiter.current_limit
    if current is None:
        return response
    window = _window(limiter, current)
    if window is None:
        return response
    remaining, reset_at = window
    reset_in = max(0, math.ceil(reset_at - time.time()))
    response.headers["RateLimit-Limit"] = str(current.limit.amount)
    response.headers["RateLimit-Remaining"] = str(remaining)
    response.headers["RateLimit-Reset"] = str(reset_in)
    response.headers["RateLimit-Policy"] = f"{current.limit.amount};w={current.limit.get_expiry()}"
    if response.status_code == 429:
        response.headers.setdefault("Retry-After", str(max(1, reset_in)))  # keep a more specific one
    return response
