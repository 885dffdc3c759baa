"""Attempt limits and progressive lockout for authentication endpoints.

``guard`` is called *before* any password hash or secret comparison. It reserves one
attempt per scope (the account and the client address) in a single Lua script, so
twenty concurrent guesses cannot race past the limit: exactly ``limit`` attempts in a
window get through, the rest get 429 with Retry-After. Going over the limit locks the
scope for one window, doubling with each further lockout (up to AUTH_LOCKOUT_MAX_S).
A successful sign-in clears the account's counters (``succeeded``).

Redis down: these limits fail closed (503 ``auth_unavailable``), unlike the general
API limits, because letting guesses through unmetered is the worse failure.
Accounts appear in Redis only as SHA-256 digests.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
from typing import Any

import redis
from flask import current_app

from backend.common.errors import ServiceUnavailable, TooManyRequests
from backend.common.jobs import redis_client

# KEYS: per scope (count, strikes, lock); ARGV: window_ms, max_lock_ms, then one limit per scope.
_SCRIPT = """
local window, max_lock = tonumber(ARGV[1]), tonumber(ARGV[2])
local scopes = #KEYS / 3
for i = 0, scopes - 1 do
  local ttl = redis.call('PTTL', KEYS[i * 3 + 3])
  if ttl > 0 then return ttl end
end
local locked = 0
for i = 0, scopes - 1 do
  local count_key, strikes_key, lock_key = KEYS[i * 3 + 1], KEYS[i * 3 + 2], KEYS[i * 3 + 3]
  local n = redis.call('INCR', count_key)
  if n == 1 then redis.call('PEXPIRE', count_key, window) end
  if n > tonumber(ARGV[3 + i]) then
    local strikes = redis.call('INCR', strikes_key)
    redis.call('PEXPIRE', strikes_key, max_lock * 2)
    local lock = math.min(window * 2 ^ (strikes - 1), max_lock)
    redis.call('SET', lock_key, '1', 'PX', math.floor(lock))
    redis.call('DEL', count_key)
    locked = math.max(locked, lock)
  end
end
return math.floor(locked)
"""



@functools.lru_cache(maxsize=16)  # one per Redis client (an app has one; tests build many)
def _script(client: redis.Redis) -> Any:
    """The script by its SHA (EVALSHA), not its text sent with every attempt; loaded again if Redis forgot it."""
    return client.register_script(_SCRIPT)


# Which settings limit each kind of attempt: (per account, per client address).
_LIMITS = {
    "login": ("AUTH_LOGIN_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
    "staff_login": ("AUTH_LOGIN_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
    "reauth": ("AUTH_LOGIN_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
    "otp": ("AUTH_LOGIN_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
    "register": ("AUTH_EMAIL_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
    "reset": ("AUTH_EMAIL_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
    "resend": ("AUTH_EMAIL_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
    "verify": ("AUTH_EMAIL_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
    "email_code": ("AUTH_EMAIL_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),  # mails sent
    "anonymous": ("AUTH_LOGIN_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
    "social": ("AUTH_LOGIN_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
    "passkey": ("AUTH_LOGIN_LIMIT_PER_ACCOUNT", "AUTH_LOGIN_LIMIT_PER_IP"),
}


def _scope_keys(kind: str, scope: str, value: str) -> list[str]:
    ident = hashlib.sha256(value.strip().casefold().encode()).hexdigest()[:32]
    base = f"groundwork:lockout:{kind}:{scope}:{ident}"
    return [f"{base}:count", f"{base}:strikes", f"{base}:lock"]


def guard(*, kind: str, account: str | None = None, ip: str | None = None) -> None:
    """Reserve one attempt for ``account`` and ``ip``; raise 429 when either is over its limit."""
    config = current_app.config
    account_setting, ip_setting = _LIMITS[kind]  # an unknown kind is a bug, not the login limit
    keys: list[str] = []
    limits: list[int] = []
    if account:
        keys += _scope_keys(kind, "account", account)
        limits.append(config[account_setting])
    if ip:
        keys += _scope_keys(kind, "ip", ip)
        limits.append(config[ip_setting])
    if not keys:
        return
    window_ms = config["AUTH_LOCKOUT_WINDOW_S"] * 1000
    try:
        client = redis_client()
        locked_ms = _script(client)(keys=keys, args=[window_ms, config["AUTH_LOCKOUT_MAX_S"] * 1000, *limits])
    except redis.RedisError as exc:
        raise ServiceUnavailable("Sign-in is temporarily unavailable; retry shortly.",
                                 code="auth_unavailable") from exc
    if int(locked_ms) > 0:
        raise TooManyRequests("Too many attempts; wait before trying again.", code="too_many_attempts",
                              retry_after=-(-int(locked_ms) // 1000))


def succeeded(*, kind: str, account: str) -> None:
    """Forget the account's failed attempts after a success (best effort)."""
    with contextlib.suppress(redis.RedisError):  # the counter expires with its window anyway
        redis_client().delete(*_scope_keys(kind, "account", account)[:2])
