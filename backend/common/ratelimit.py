"""Rate-limit keys, exemptions, the per-user limit, and the ``RateLimit-*`` / ``Retry-After`` headers.

Policy when Redis is down: general API limits fail open (the limiter swallows the
error and logs it); account-security limits in the auth domain fail closed.

Who is counted where (OWASP API4, unrestricted resource consumption):
- The general per-address limit (``RATELIMIT_DEFAULT``) counts anonymous traffic,
  writes, and any request whose bearer token does not verify: ``Bearer x`` buys nothing.
- A read that carries a *valid* access token, on a route that signs its caller in, is
  not counted per address (a carrier NAT puts thousands of phones behind one address);
  it counts against its user's own limit (``RATELIMIT_PER_USER``) instead. Every
  signed-in request counts there, reads and writes alike.
- The per-user count rides in the Redis command with which the principal loader reads
  the session state (``user_count_key`` / ``enforce_user_count``), so the hottest path
  (GET /v1/me) still pays one round trip. Verifying the token here costs a dictionary
  lookup after a worker's first sight of it (the auth domain memoizes verified tokens).

Exempt reads skip flask-limiter's request hook altogether (it spent more CPU deciding
they were exempt than the rest of the request took): that hook enforces only the default
limit here, while a limit put on a view with ``limiter.limit`` is checked by the view's
own wrapper and keeps applying.
"""
from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from typing import Any

import redis
from flask import Flask, Response, current_app, g, has_request_context, request
from flask_limiter import Limiter
from limits import parse

from backend.common.access import policy_of
from backend.common.errors import TooManyRequests

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
_SIGNED_IN_KINDS = frozenset({"user", "server"})
_ROUTES = "groundwork.signed_in_routes"
# The auth domain registers it: a bearer token -> its user's ID when the token verifies, else None.
BEARER_SUBJECT = "groundwork.bearer_subject"


def rate_limit_key() -> str:
    """Client address as seen after ProxyFix (the real one behind nginx)."""
    return request.remote_addr or "unknown"


def _route_signs_in() -> bool:
    """Whether this request's view loads a principal (``@require`` or ``@server_key``); memoized per app."""
    known: dict[tuple[str | None, str], bool] = current_app.extensions[_ROUTES]
    route = (request.endpoint, request.method)
    found = known.get(route)
    if found is None:
        view = current_app.view_functions.get(request.endpoint or "")
        target = getattr(getattr(view, "view_class", None), request.method.lower(), view)
        policy = policy_of(target) if target is not None else None
        found = known[route] = policy is not None and policy.kind in _SIGNED_IN_KINDS
    return found


def bearer_subject() -> str | None:
    """The user ID of this request's bearer token when it verifies, else None (remembered for the request)."""
    if "bearer_subject" not in g:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        verify = current_app.extensions.get(BEARER_SUBJECT)
        ok = scheme.lower() == "bearer" and token.strip() and verify is not None
        g.bearer_subject = verify(token.strip()) if ok else None
    return g.bearer_subject


def exempt_from_default_limits() -> bool:
    """Only a read with a valid access token, on a route that signs its caller in, skips the per-address limit."""
    return (request.method in _READS and request.headers.get("Authorization", "")[:7].lower() == "bearer "
            and _route_signs_in() and bearer_subject() is not None)


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
    app.extensions[_ROUTES] = {}
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


@functools.lru_cache(maxsize=8)
def _parsed(limit: str) -> tuple[int, int]:
    item = parse(limit)
    return item.amount, item.get_expiry()


def user_limit() -> tuple[int, int] | None:
    """(requests, window seconds) each user may make, or None when limits are off."""
    config = current_app.config
    return _parsed(config["RATELIMIT_PER_USER"]) if config["RATELIMIT_ENABLED"] else None


def _window_start(window_s: int, now: float) -> int:
    return int(now // window_s) * window_s


def user_count_key(user_id: Any) -> tuple[str, int] | None:
    """(key, expiry seconds) of this request's per-user counter (fixed window), or None when not counted.

    Only API requests count (not, say, the stream server verifying a token under an app context).
    """
    limit = user_limit() if has_request_context() else None
    if limit is None:
        return None
    return f"groundwork:rl:user:{user_id}:{_window_start(limit[1], time.time())}", limit[1] + 1


def queue_user_count(pipe: Any, user_id: Any) -> bool:
    """Add this request's per-user count to a Redis pipeline the caller runs anyway.

    Returns whether anything was queued: two results (count, expire) follow the caller's own.
    """
    counter = user_count_key(user_id)
    if counter is None:
        return False
    pipe.incr(counter[0])
    pipe.expire(*counter)
    return True


def enforce_user_count(count: int) -> None:
    """Refuse the request (429) when its user's count is over the limit; the headers tell the budget."""
    amount, window_s = user_limit() or (0, 0)
    if not amount:
        return
    now = time.time()
    reset_in = max(1, math.ceil(_window_start(window_s, now) + window_s - now))
    g.user_rate = (amount, max(0, amount - count), reset_in, window_s)
    if count > amount:
        raise TooManyRequests("Too many requests for this account; slow down.", code="rate_limited",
                              retry_after=g.user_rate[2])


def count_user_request(user_id: Any) -> None:
    """Count a request against its user's limit on its own round trip (fails open when Redis is down)."""
    client = current_app.extensions["groundwork.redis"]
    try:
        pipe = client.pipeline(transaction=False)
        if not queue_user_count(pipe, user_id):
            return
        count, _ = pipe.execute()
    except redis.RedisError:
        return
    enforce_user_count(int(count))


def _set_headers(response: Response, amount: int, remaining: int, reset_in: int, window_s: int) -> None:
    response.headers["RateLimit-Limit"] = str(amount)
    response.headers["RateLimit-Remaining"] = str(remaining)
    response.headers["RateLimit-Reset"] = str(reset_in)
    response.headers["RateLimit-Policy"] = f"{amount};w={window_s}"
    if response.status_code == 429:
        response.headers.setdefault("Retry-After", str(max(1, reset_in)))  # keep a more specific one


def _rate_limit_headers(response: Response) -> Response:
    limiter = limiter_of()
    current = limiter.current_limit
    if current is None:
        user_rate = g.get("user_rate")
        if user_rate is not None:
            _set_headers(response, *user_rate)
        return response
    window = _window(limiter, current)
    if window is None:
        return response
    remaining, reset_at = window
    _set_headers(response, current.limit.amount, remaining, max(0, math.ceil(reset_at - time.time())),
                 current.limit.get_expiry())
    return response
