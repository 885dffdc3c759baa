"""The principal loader, and the cached session/user state it checks on every request.

Every signed-in request is checked against the *current* state of its session and user,
so sign-out, "sign out everywhere", password change and suspension take effect on the
next request rather than at token expiry.

Cache and Redis policy (decided here, tested in tests/auth/test_principal.py):
- reads: the state is cached in Redis (``AUTH_STATE_CACHE_TTL_S``). When Redis is
  unreachable the loader falls back to PostgreSQL, the source of truth: requests get
  slower, never wrongly admitted, never refused.
- writes: services that change a session or user call ``forget_state`` *before* their
  commit and again after it. The first call fails closed: if Redis cannot be reached the
  change is refused with 503 (the client retries), so a stale "active" entry can never
  outlive a revocation by surviving a Redis hiccup. The second call closes the window
  in which a concurrent request could re-cache the old state.
"""
from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Iterable
from typing import Any

import redis
from flask import current_app, g, request
from sqlalchemy import bindparam, select

from backend.auth.models import Session, User
from backend.auth.tokens import decode_access_token
from backend.common.access import Principal
from backend.common.errors import ServiceUnavailable, Unauthorized
from backend.common.jobs import redis_client
from backend.common.ratelimit import count_user_request, enforce_user_count, user_count_key
from backend.extensions import db

log = logging.getLogger(__name__)

# Why a session ended → the code the client gets (also used by sessions.py).
REVOCATION_CODES = {
    "signed_out": "session_revoked",
    "signed_out_everywhere": "session_revoked",
    "revoked_by_user": "session_revoked",
    "revoked_by_staff": "session_revoked",
    "password_changed": "password_changed",
    "account_suspended": "account_suspended",
    "refresh_token_reused": "refresh_token_reused",
    "account_deleted": "session_revoked",
}
MESSAGES = {
    "session_revoked": "This session was signed out; sign in again.",
    "password_changed": "The password was changed; sign in again.",
    "account_suspended": "This account is suspended.",
    "refresh_token_reused": "This session was ended because its refresh token was used twice; sign in again.",
    "session_expired": "This session has expired; sign in again.",
}


def session_key(session_id: uuid.UUID | str) -> str:
    return f"groundwork:auth:session:{session_id}"


def user_key(user_id: uuid.UUID | str) -> str:
    return f"groundwork:auth:user:{user_id}"


def me_key(user_id: uuid.UUID | str) -> str:
    return f"groundwork:auth:me:{user_id}"


def session_ended(reason: str) -> Unauthorized:
    """The 401 that tells a client why its session ended."""
    code = REVOCATION_CODES.get(reason, reason)
    return Unauthorized(MESSAGES.get(code, MESSAGES["session_revoked"]), code=code)


def forget_state(*, users: Iterable[uuid.UUID] = (), sessions: Iterable[uuid.UUID] = (), strict: bool = True) -> None:
    """Drop cached state; with ``strict`` (before a commit) a Redis failure refuses the change."""
    keys = [k for u in users for k in (user_key(u), me_key(u))] + [session_key(s) for s in sessions]
    if not keys:
        return
    try:
        redis_client().delete(*keys)
    except redis.RedisError as exc:
        if strict:
            raise ServiceUnavailable("Account state cannot be updated right now; retry shortly.",
                                     code="auth_unavailable") from exc
        log.warning("could not drop cached auth state after commit: %s", exc)


# Built once: composing the statement per request cost as much CPU as running it.
# The whole user row comes along: the view (GET /v1/me, accounts.load_user) then finds
# it in the session's identity map instead of querying PostgreSQL a second time.
_STATE_QUERY = (
    select(User, Session.revoked_reason, Session.revoked_at)
    .join(Session, Session.user_id == User.id)
    .where(Session.id == bindparam("session_id"), User.id == bindparam("user_id"))
)


def _load_state(user_id: uuid.UUID, session_id: uuid.UUID) -> tuple[dict | None, dict | None]:
    row = db.session.execute(_STATE_QUERY, {"session_id": session_id, "user_id": user_id}).first()
    if row is None:
        return None, None
    # The session's identity map holds objects weakly: without a reference the user would be
    # collected on return and the view's read would query PostgreSQL again. Held for this
    # request only (``g`` ends with it).
    g.state_user = row[0]
    return _state_of(*row)


def _state_of(user: User, revoked_reason: str | None, revoked_at: Any) -> tuple[dict, dict]:
    user_state = {"status": user.status, "ver": user.token_version, "role": user.role}
    return user_state, {"revoked": (revoked_reason or "signed_out") if revoked_at else None}


# One command per signed-in request: the cached user and session state, the cached
# profile (GET /v1/me then needs no other I/O) and, when counted, this request's per-user
# rate-limit count, whose window key gets its expiry when created. A pipeline of MGET,
# INCR and EXPIRE cost three commands to pack and three replies to parse for the same trip.
_STATE_LUA = """
local found = redis.call('MGET', KEYS[1], KEYS[2], KEYS[3])
if #KEYS > 3 then
  local count = redis.call('INCR', KEYS[4])
  if count == 1 then redis.call('EXPIRE', KEYS[4], ARGV[1]) end
  found[4] = count
end
return found
"""


@functools.lru_cache(maxsize=16)  # one per Redis client (an app has one; tests build many)
def _state_script(client: redis.Redis) -> Any:
    return client.register_script(_STATE_LUA)


def current_state(user_id: uuid.UUID, session_id: uuid.UUID) -> tuple[dict | None, dict | None]:
    """(user state, session state): from Redis when cached, else PostgreSQL (then cached).

    The request is counted against its user's rate limit in the same command (429 when over).
    """
    ttl = current_app.config["AUTH_STATE_CACHE_TTL_S"]
    if ttl <= 0:
        count_user_request(user_id)
        return _load_state(user_id, session_id)
    client = redis_client()
    counter = user_count_key(user_id)
    keys = [user_key(user_id), session_key(session_id), me_key(user_id)]
    try:
        if counter is None:
            results = _state_script(client)(keys=keys)
        else:
            results = _state_script(client)(keys=[*keys, counter[0]], args=[counter[1]])
    except redis.RedisError as exc:
        log.warning("auth state cache unreachable, reading PostgreSQL: %s", exc)
        return _load_state(user_id, session_id)
    cached_user, cached_session, g.cached_profile = results[:3]
    if counter is not None:
        enforce_user_count(int(results[3]))
    if cached_user is not None and cached_session is not None:
        return json.loads(cached_user), json.loads(cached_session)
    user_state, session_state = _load_state(user_id, session_id)
    if user_state is not None:
        try:
            pipe = client.pipeline(transaction=False)
            pipe.set(user_key(user_id), json.dumps(user_state), ex=ttl)
            pipe.set(session_key(session_id), json.dumps(session_state), ex=ttl)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not cache auth state: %s", exc)
    return user_state, session_state


def _load_states(pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> dict[tuple[uuid.UUID, uuid.UUID], tuple]:
    """``_load_state`` for many pairs in one query (absent pairs: ``(None, None)``)."""
    found: dict[tuple[uuid.UUID, uuid.UUID], tuple] = {pair: (None, None) for pair in pairs}
    rows = db.session.execute(
        select(User, Session.id, Session.revoked_reason, Session.revoked_at).join(Session, Session.user_id == User.id)
        .where(Session.id.in_([session_id for _, session_id in pairs])))
    for user, session_id, revoked_reason, revoked_at in rows:
        if (user.id, session_id) in found:
            found[(user.id, session_id)] = _state_of(user, revoked_reason, revoked_at)
    return found


def live_states(pairs: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> dict[tuple[uuid.UUID, uuid.UUID], tuple]:
    """``current_state`` for many (user, session) pairs: one Redis round trip, one query for the misses."""
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        return {}
    ttl = current_app.config["AUTH_STATE_CACHE_TTL_S"]
    if ttl <= 0:
        return _load_states(pairs)
    client = redis_client()
    try:
        cached = client.mget([k for u, s in pairs for k in (user_key(u), session_key(s))])
    except redis.RedisError as exc:
        log.warning("auth state cache unreachable, reading PostgreSQL: %s", exc)
        return _load_states(pairs)
    found, missing = {}, []
    for index, pair in enumerate(pairs):
        user_raw, session_raw = cached[2 * index], cached[2 * index + 1]
        if user_raw is None or session_raw is None:
            missing.append(pair)
        else:
            found[pair] = (json.loads(user_raw), json.loads(session_raw))
    if missing:
        loaded = _load_states(missing)
        found.update(loaded)
        try:
            pipe = client.pipeline(transaction=False)
            for (user_id, session_id), (user_state, session_state) in loaded.items():
                if user_state is not None:
                    pipe.set(user_key(user_id), json.dumps(user_state), ex=ttl)
                    pipe.set(session_key(session_id), json.dumps(session_state), ex=ttl)
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not cache auth state: %s", exc)
    return found


def check_live_state(claims: dict[str, Any], user_state: dict | None, session_state: dict | None) -> None:
    """Raise the 401 telling why a token's session may no longer act (signed out, suspended, deleted)."""
    if user_state is None or session_state is None:
        raise session_ended("signed_out")
    if session_state["revoked"]:
        raise session_ended(session_state["revoked"])
    if user_state["status"] == "suspended":
        raise session_ended("account_suspended")
    if user_state["ver"] != claims["ver"]:
        raise session_ended("signed_out_everywhere")


def principal_from_token(token: str) -> Principal:
    """Verify an access token and the live state behind it; raise a 401 telling why not."""
    claims = decode_access_token(token)
    user_state, session_state = current_state(claims["sub"], claims["sid"])
    check_live_state(claims, user_state, session_state)
    return Principal(kind="user", user_id=claims["sub"], role=user_state["role"], session_id=claims["sid"],
                     claims=claims)


def bearer_subject(token: str) -> str | None:
    """The user ID of a verified access token, else None (the rate limiter's test of a bearer)."""
    try:
        return str(decode_access_token(token)["sub"])
    except Unauthorized:
        return None


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _server_principal(api_key: str) -> Principal:
    import hmac

    for index, known in enumerate(current_app.config["SERVER_API_KEYS"]):
        if hmac.compare_digest(api_key.encode(), known.encode()):
            return Principal(kind="server", role="server", claims={"key_id": str(index)})
    raise Unauthorized("The API key is not valid.", code="api_key_invalid")


def load_principal(kind: str) -> Principal:
    """The loader behind ``@require`` ("user") and ``@server_key`` ("server")."""
    if kind == "server":
        api_key = request.headers.get("X-API-Key")
        if api_key:
            return _server_principal(api_key)
    token = _bearer_token()
    if token is None:
        raise Unauthorized("Sign in to continue.", code="not_authenticated")
    return principal_from_token(token)


__all__: list[Any] = ["check_live_state", "forget_state", "live_states", "load_principal", "principal_from_token",
                      "session_ended"]
