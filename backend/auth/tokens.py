"""Access tokens: short JWTs signed asymmetrically, with key IDs and a JWKS.

Keys come from ``JWT_PRIVATE_KEYS`` (PEM Ed25519 or RSA, newest first): the newest
signs, all of them verify, so adding a key at the front and dropping the oldest a token
lifetime later logs nobody out. Ed25519 signs with EdDSA, RSA with RS256; the algorithm
is pinned per key, and a token's ``kid`` only selects among our own keys: ``jku``,
``x5u`` and embedded keys are never followed.

Development and test without ``JWT_PRIVATE_KEYS``: one Ed25519 key derived from
``SECRET_KEY`` (so every process of one deployment, workers included, agrees; with no
SECRET_KEY set it is random per process). Production refuses to start without keys.

flask-jwt-extended creates and verifies the tokens: its encode key and header loaders
sign with the newest key (``alg`` and ``kid`` in the header pin the algorithm per key),
its decode key loader picks among our keys by ``kid`` and refuses any other algorithm,
and issuer, audience and leeway come from its settings. Its error callbacks (registered
by ``backend.auth.principal``) answer in the common error shape. What stays ours: the
per-worker memo of verified tokens (the library verifies the signature on every call)
and the required-claims check (the library requires only ``sub``).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from flask import Flask, current_app
from flask_jwt_extended import create_access_token, decode_token
from flask_jwt_extended.exceptions import JWTExtendedException
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm

from backend.common.db import utcnow
from backend.common.errors import Unauthorized
from backend.extensions import jwt_manager

_PEM_RE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", re.S)
_EXTENSION = "groundwork.jwt_keys"
_VERIFIED = "groundwork.jwt_verified"
# A client sends the same access token on every request of its lifetime, and verifying
# one (two base64/JSON parses and an Ed25519 check in PyJWT) costs more CPU than all the
# rest of GET /v1/me. The outcome for the same bytes under the same keys never changes,
# so each worker remembers the claims of tokens it verified; only ``exp`` moves with
# time and is checked on every use. Revocation is not decided here: the principal
# loader checks the live session/user state on every request regardless.
_VERIFIED_MAX = 4096  # tokens per worker (about 1 KiB each); the oldest goes first
_LEEWAY_S = 5
REQUIRED_CLAIMS = ("iss", "aud", "sub", "sid", "role", "ver", "typ", "exp", "iat", "jti")


@dataclass(frozen=True)
class SigningKey:
    """One of our keys: its ID, pinned algorithm, private key and public JWK."""

    kid: str
    alg: str
    private: Any
    public: Any
    jwk: dict[str, str]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signing_key(private: Any) -> SigningKey:
    if isinstance(private, ed25519.Ed25519PrivateKey):
        alg, jwk = "EdDSA", OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
        members = {k: jwk[k] for k in ("crv", "kty", "x")}
    elif isinstance(private, rsa.RSAPrivateKey):
        if private.key_size < 2048:
            raise ValueError("RSA keys for JWTs must have at least 2048 bits")
        alg, jwk = "RS256", RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
        members = {k: jwk[k] for k in ("e", "kty", "n")}
    else:
        raise ValueError("JWT_PRIVATE_KEYS holds a key that is neither Ed25519 nor RSA")
    # RFC 7638 thumbprint: the key ID is derived from the key, never chosen by hand.
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    kid = _b64(hashlib.sha256(canonical).digest())[:22]
    public_jwk = {**jwk, "kid": kid, "alg": alg, "use": "sig"}
    return SigningKey(kid=kid, alg=alg, private=private, public=private.public_key(), jwk=public_jwk)


def load_keys(config: dict[str, Any]) -> list[SigningKey]:
    """Parse the configured keys (newest first), or derive the development key."""
    raw = config.get("JWT_PRIVATE_KEYS") or ""
    blocks = _PEM_RE.findall(raw)
    if blocks:
        return [_signing_key(serialization.load_pem_private_key(b.encode(), password=None)) for b in blocks]
    if config.get("ENV") == "production":
        raise ValueError("JWT_PRIVATE_KEYS is required in production")
    seed = hashlib.sha256(b"groundwork.jwt.dev-key:" + str(config["SECRET_KEY"]).encode()).digest()
    return [_signing_key(ed25519.Ed25519PrivateKey.from_private_bytes(seed))]


def init_keys(app: Flask) -> None:
    """Load the app's signing keys once (parsing only, no I/O) and bind flask-jwt-extended to them."""
    app.extensions[_EXTENSION] = load_keys(app.config)
    app.extensions[_VERIFIED] = _VerifiedTokens()
    c = app.config
    c["JWT_TOKEN_LOCATION"] = ["headers"]
    c["JWT_ALGORITHM"] = app.extensions[_EXTENSION][0].alg  # informational: the header's alg decides
    c["JWT_DECODE_ALGORITHMS"] = ["EdDSA", "RS256"]  # and the decode key loader pins each key's own
    c["JWT_ENCODE_ISSUER"] = c["JWT_DECODE_ISSUER"] = c["JWT_ISSUER"]
    c["JWT_ENCODE_AUDIENCE"] = c["JWT_DECODE_AUDIENCE"] = c["JWT_AUDIENCE"]
    c["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(seconds=c["ACCESS_TOKEN_TTL_S"])
    c["JWT_DECODE_LEEWAY"] = _LEEWAY_S
    c["JWT_IDENTITY_CLAIM"] = "sub"
    c["JWT_ENCODE_NBF"] = False
    c["JWT_COOKIE_CSRF_PROTECT"] = False  # headers only: a random csrf claim would make tokens non-deterministic
    jwt_manager.init_app(app)


@jwt_manager.encode_key_loader
def _encode_key(identity: Any) -> Any:
    return _keys()[0].private


@jwt_manager.additional_headers_loader
def _encode_headers(identity: Any) -> dict[str, str]:
    key = _keys()[0]
    return {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}  # PyJWT signs with the header's alg


@jwt_manager.decode_key_loader
def _decode_key(header: dict[str, Any], payload: dict[str, Any]) -> Any:
    """Only our own keys, by ``kid``, each with its own algorithm (no jku, x5u or embedded keys)."""
    key = next((k for k in _keys() if k.kid == header.get("kid")), None)
    if key is None or header.get("alg") != key.alg:
        raise Unauthorized("The access token was not signed by this server.", code="token_invalid")
    return key.public


class _VerifiedTokens:
    """Bounded memo of verified access tokens → their claims (per app, thread-safe)."""

    def __init__(self) -> None:
        self._claims: dict[str, dict[str, Any]] = {}
        self._keys: list[SigningKey] | None = None
        self._lock = threading.Lock()

    def get(self, token: str, keys: list[SigningKey]) -> dict[str, Any] | None:
        if keys is not self._keys:  # another key set (rotation): what it verified no longer counts
            with self._lock:
                self._claims, self._keys = {}, keys
            return None
        return self._claims.get(token)

    def remember(self, token: str, claims: dict[str, Any], keys: list[SigningKey]) -> None:
        with self._lock:
            if keys is not self._keys:  # verified under a key set replaced meanwhile
                return
            if len(self._claims) >= _VERIFIED_MAX:
                del self._claims[next(iter(self._claims))]  # insertion order: the oldest
            self._claims[token] = claims

    def forget(self, token: str) -> None:
        self._claims.pop(token, None)


def _keys() -> list[SigningKey]:
    return current_app.extensions[_EXTENSION]


def jwks() -> dict[str, list[dict[str, str]]]:
    """The public keys, as a JWK Set (``/.well-known/jwks.json``)."""
    return {"keys": [key.jwk for key in _keys()]}


def issue_access_token(*, user_id: uuid.UUID, session_id: uuid.UUID, role: str, token_version: int,
                       issued_at: datetime, jti: uuid.UUID) -> str:
    """Sign an access token; the same inputs give the same token (deterministic signatures)."""
    iat = int(issued_at.timestamp())
    claims = {"sid": str(session_id), "role": role, "ver": token_version, "typ": "access", "iat": iat,
              "exp": iat + current_app.config["ACCESS_TOKEN_TTL_S"], "jti": str(jti)}
    return create_access_token(identity=str(user_id), additional_claims=claims)


def decode_access_token(token: str) -> dict[str, Any]:
    """Verified claims of an access token, or Unauthorized(token_expired|token_invalid)."""
    verified: _VerifiedTokens = current_app.extensions[_VERIFIED]
    keys = _keys()
    claims = verified.get(token, keys)
    if claims is not None:
        # PyJWT's rule (exp <= now - leeway is expired), with the app's clock (tests move it).
        if claims["exp"] <= utcnow().timestamp() - _LEEWAY_S:
            verified.forget(token)
            raise Unauthorized("The access token has expired; refresh it.", code="token_expired")
        return dict(claims)
    claims = _verify_access_token(token)
    verified.remember(token, claims, keys)
    return dict(claims)


def _verify_access_token(token: str) -> dict[str, Any]:
    try:
        claims = decode_token(token)
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The access token has expired; refresh it.", code="token_expired") from exc
    except (jwt.PyJWTError, JWTExtendedException) as exc:
        raise Unauthorized("The access token is not valid.", code="token_invalid") from exc
    if any(name not in claims for name in REQUIRED_CLAIMS) or claims.get("typ") != "access":
        raise Unauthorized("This is not an access token.", code="token_invalid")
    try:
        claims["sub"], claims["sid"] = uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])
    except (ValueError, TypeError, AttributeError) as exc:
        raise Unauthorized("The access token is not valid.", code="token_invalid") from exc
    return claims
