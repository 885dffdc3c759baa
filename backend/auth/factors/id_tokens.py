"""Google and Apple ID tokens: signing keys fetched and cached, every claim checked.

Keys come only from the configured JWKS URL (a token's own ``jku``/``x5u`` headers are
never followed). They are cached for the provider's Cache-Control max-age; an unknown
``kid`` triggers at most one refetch a minute (a forger cannot make us hammer the
provider); a failed fetch keeps the last good keys. The algorithm is pinned per
provider, so ``none``, HS256-with-the-public-key and the like fail before any key is used.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
from flask import current_app

from backend.common.errors import DomainError, ServiceUnavailable, Unauthorized

FETCH_TIMEOUT_S = 3.0
UNKNOWN_KID_REFETCH_S = 60.0
DEFAULT_MAX_AGE_S = 300.0  # when the provider sends no max-age
LONGEST_MAX_AGE_S = 86400.0
LEEWAY_S = 60  # phones' clocks drift; a minute either way
ALLOWED_ALGS = frozenset({"RS256", "ES256"})
_MAX_AGE = re.compile(r"max-age=(\d+)")


@dataclass(frozen=True)
class Provider:
    """How one identity provider issues ID tokens."""

    name: str
    issuers: tuple[str, ...]
    alg: str
    jwks_setting: str
    client_ids_setting: str
    nonce_is_hashed: bool  # Apple puts SHA-256(raw nonce) in the token


PROVIDERS = {
    "google": Provider("google", ("accounts.google.com", "https://accounts.google.com"), "RS256",
                       "GOOGLE_JWKS_URL", "GOOGLE_CLIENT_IDS", nonce_is_hashed=False),
    "apple": Provider("apple", ("https://appleid.apple.com",), "RS256",
                      "APPLE_JWKS_URL", "APPLE_CLIENT_IDS", nonce_is_hashed=True),
}
assert all(p.alg in ALLOWED_ALGS for p in PROVIDERS.values())


@dataclass(frozen=True)
class VerifiedIdentity:
    """What a verified ID token says about its holder."""

    provider: str
    subject: str
    email: str | None
    email_verified: bool
    is_private_email: bool


class IdTokenInvalid(Unauthorized):
    code = "id_token_invalid"

    def __init__(self, check: str, message: str = "The ID token was rejected."):
        super().__init__(message, details={"check": check})


class ProviderNotConfigured(DomainError):
    status, code = 400, "provider_not_configured"


class JwksCache:
    """The signing keys published at one URL, fetched over HTTP and kept between requests."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.monotonic,
                 timeout: float = FETCH_TIMEOUT_S) -> None:
        self.url, self.clock, self.timeout = url, clock, timeout
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fresh_until = float("-inf")
        self._last_unknown_kid_fetch = float("-inf")
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The published key ``kid``, fetching when the cache is stale or the kid is new."""
        with self._lock:
            now = self.clock()
            if now >= self._fresh_until:
                self._refresh(now)
            elif kid not in self._keys and now - self._last_unknown_kid_fetch >= UNKNOWN_KID_REFETCH_S:
                self._last_unknown_kid_fetch = now
                self._refresh(now)
            return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        try:
            keys, max_age = self._fetch()
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            if not self._keys:  # nothing to fall back on
                raise ServiceUnavailable("The identity provider's keys cannot be fetched; retry shortly.",
                                         code="identity_provider_unavailable", retry_after=5) from exc
            current_app.logger.warning("JWKS fetch from %s failed, keeping last keys: %s", self.url, exc)
            self._fresh_until = now + min(DEFAULT_MAX_AGE_S, 60.0)  # retry soon, not on every request
            return
        self._keys, self._fresh_until = keys, now + max_age

    def _fetch(self) -> tuple[dict[str, jwt.PyJWK], float]:
        request = urllib.request.Request(self.url, headers={"Accept": "application/json"})  # noqa: S310 - configured URL
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            body = json.loads(response.read(1_000_000))
            cache_control = response.headers.get("Cache-Control", "")
        keys: dict[str, jwt.PyJWK] = {}
        for data in body.get("keys", []):
            if data.get("kid") and data.get("alg", "RS256") in ALLOWED_ALGS and data.get("use", "sig") == "sig":
                try:
                    keys[data["kid"]] = jwt.PyJWK(data)
                except jwt.PyJWTError:
                    continue  # one odd key must not hide the good ones
        if not keys:
            raise ValueError("JWKS holds no usable signing key")
        found = _MAX_AGE.search(cache_control)
        max_age = float(found.group(1)) if found and "no-store" not in cache_control else DEFAULT_MAX_AGE_S
        return keys, min(max_age, LONGEST_MAX_AGE_S)


def jwks_cache(url: str) -> JwksCache:
    """This app's cache for ``url`` (one per URL, shared by the app's threads)."""
    caches = current_app.extensions.setdefault("groundwork.jwks", {})
    if url not in caches:
        caches[url] = JwksCache(url)
    return caches[url]


_DECODE_ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "expired"),
    (jwt.InvalidAudienceError, "audience"),
    (jwt.InvalidIssuerError, "issuer"),
    (jwt.ImmatureSignatureError, "issued_at"),
    (jwt.InvalidIssuedAtError, "issued_at"),
    (jwt.MissingRequiredClaimError, "missing_claim"),
    (jwt.InvalidSignatureError, "signature"),
    (jwt.InvalidAlgorithmError, "algorithm"),
)


def _truthy(value: Any) -> bool:
    """Google sends booleans, Apple the strings "true"/"false"."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def verify_id_token(*, provider: str, id_token: str, nonce: str | None) -> VerifiedIdentity:
    """Check an ID token's signature, issuer, audience, times and nonce; return who it names."""
    spec = PROVIDERS[provider]
    client_ids = current_app.config[spec.client_ids_setting]
    if not client_ids:
        raise ProviderNotConfigured(f"Sign-in with {provider} is not configured on this server.")
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise IdTokenInvalid("malformed") from exc
    if header.get("alg") != spec.alg:
        raise IdTokenInvalid("algorithm")
    kid = header.get("kid")
    key = jwks_cache(current_app.config[spec.jwks_setting]).key_for(kid) if isinstance(kid, str) and kid else None
    if key is None:
        raise IdTokenInvalid("unknown_key")
    try:
        claims = jwt.decode(
            id_token, key, algorithms=[spec.alg], audience=client_ids, issuer=spec.issuers, leeway=LEEWAY_S,
            options={"require": ["iss", "aud", "sub", "exp", "iat"]},
        )
    except jwt.PyJWTError as exc:
        check = next((name for kind, name in _DECODE_ERRORS if isinstance(exc, kind)), "malformed")
        raise IdTokenInvalid(check) from exc
    _check_nonce(spec, claims.get("nonce"), nonce)
    subject = claims["sub"]
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise IdTokenInvalid("subject")
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    return VerifiedIdentity(
        provider=provider, subject=subject, email=email.strip().lower() if email else None,
        email_verified=bool(email) and _truthy(claims.get("email_verified")),
        is_private_email=_truthy(claims.get("is_private_email")),
    )


def _check_nonce(spec: Provider, in_token: Any, raw: str | None) -> None:
    """A nonce on either side must match the other (replayed tokens carry someone else's)."""
    if in_token is None and raw is None:
        return
    if in_token is None or raw is None or not isinstance(in_token, str):
        raise IdTokenInvalid("nonce")
    expected = hashlib.sha256(raw.encode()).hexdigest() if spec.nonce_is_hashed else raw
    if not hmac.compare_digest(in_token.encode(), expected.encode()):
        raise IdTokenInvalid("nonce")
