"""A local OpenID provider double: a JWKS over HTTP and ID tokens signed like Google's or Apple's.

It runs in a thread on a free loopback port, so the production key fetcher talks to it
over real HTTP. Keys rotate like the real providers' (a new key is published, the old
one kept for a while, then dropped); every JWKS request is counted so tests can see
exactly when the fetcher went to the network.

    with OidcProvider("apple") as provider:
        config["APPLE_JWKS_URL"] = provider.jwks_url
        token = provider.id_token(sub="001.abc", aud="com.example.app", nonce="raw")
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUERS = {"google": "https://accounts.google.com", "apple": "https://appleid.apple.com"}


class _Key:
    def __init__(self, alg: str) -> None:
        self.alg, self.kid = alg, uuid.uuid4().hex[:16]
        if alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
            public = json.loads(ECAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            public = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        self.jwk = {**public, "kid": self.kid, "alg": alg, "use": "sig"}


class OidcProvider:
    """Publishes keys at ``jwks_url`` and signs ID tokens the way ``flavor`` does."""

    def __init__(self, flavor: str, *, alg: str = "RS256", max_age: int = 3600) -> None:
        if flavor not in ISSUERS:
            raise ValueError(flavor)
        self.flavor, self.alg, self.max_age = flavor, alg, max_age
        self.keys = [_Key(alg)]
        self.jwks_requests = 0
        self.fail_status: int | None = None  # answer JWKS requests with this status instead
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- the HTTP side -------------------------------------------------------------
    def start(self) -> OidcProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/jwks":
                    self.send_error(404)
                    return
                with provider._lock:
                    provider.jwks_requests += 1
                    status, keys = provider.fail_status, [k.jwk for k in provider.keys]
                if status:
                    self.send_error(status)
                    return
                body = json.dumps({"keys": keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", f"public, max-age={provider.max_age}, must-revalidate")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def jwks_url(self) -> str:
        assert self._server is not None, "start the provider first"
        return f"http://127.0.0.1:{self._server.server_address[1]}/jwks"

    # -- keys ----------------------------------------------------------------------
    def rotate(self, *, keep_old: bool = True) -> None:
        """Publish a new signing key (used from now on); keep or drop the old ones."""
        with self._lock:
            new = _Key(self.alg)
            self.keys = [new, *self.keys] if keep_old else [new]

    @property
    def current_key(self) -> _Key:
        return self.keys[0]

    def public_pem(self) -> bytes:
        """The current public key in PEM (what an alg-confusion attacker would use as an HMAC secret)."""
        from cryptography.hazmat.primitives import serialization

        return self.current_key.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    # -- tokens --------------------------------------------------------------------
    def claims(self, *, sub: str, aud: str, email: str | None = None, email_verified: bool = True,
               nonce: str | None = None, private_email: bool = False, lifetime: int = 600,
               issued_at: float | None = None) -> dict[str, Any]:
        """The claims the real provider would put in an ID token."""
        now = int(issued_at if issued_at is not None else time.time())
        claims: dict[str, Any] = {"iss": ISSUERS[self.flavor], "aud": aud, "sub": sub, "iat": now,
                                  "exp": now + lifetime}
        if self.flavor == "google":
            claims.update(azp=aud, at_hash="x" * 22)
            if email is not None:
                claims.update(email=email, email_verified=email_verified)
            if nonce is not None:
                claims["nonce"] = nonce
        else:
            claims.update(auth_time=now, nonce_supported=True)
            if email is not None:  # Apple sends these as strings
                claims.update(email=email, email_verified="true" if email_verified else "false")
                if private_email:
                    claims["is_private_email"] = "true"
            if nonce is not None:  # Apple carries the SHA-256 of the app's raw nonce
                claims["nonce"] = hashlib.sha256(nonce.encode()).hexdigest()
        return claims

    def sign(self, claims: dict[str, Any], *, key: _Key | None = None, kid: str | None = None) -> str:
        """Sign ``claims`` with a published key (or the one given), as the provider does."""
        key = key or self.current_key
        return jwt.encode(claims, key.private, algorithm=key.alg, headers={"kid": kid or key.kid})

    def id_token(self, **kwargs: Any) -> str:
        """A valid ID token for ``claims(**kwargs)``."""
        return self.sign(self.claims(**kwargs))

    def stranger_key(self) -> _Key:
        """A key this provider never published (a forger's)."""
        return _Key(self.alg)
