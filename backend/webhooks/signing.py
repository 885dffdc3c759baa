"""Standard Webhooks signatures: HMAC-SHA256 over ``{id}.{timestamp}.{body}``.

Secrets look like ``whsec_<base64 of 32 random bytes>``; the key is the decoded bytes.
Receivers check the signature and that the timestamp is recent (replay protection);
``verify`` is what the README's sample does.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

PREFIX = "whsec_"
TOLERANCE_S = 300


class InvalidSignature(ValueError):
    """The webhook was not signed with this secret, or is too old or too new."""


def new_secret() -> str:
    """A fresh endpoint secret."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers_for(secret: str | list[str], *, msg_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Every header a delivery carries (one signature per secret, space-separated)."""
    timestamp = int(now if now is not None else time.time())
    secrets_ = [secret] if isinstance(secret, str) else secret
    signatures = " ".join(sign(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets_)
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures,
            "content-type": "application/json", "user-agent": "Groundwork-Webhooks/1"}


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: float | None = None) -> None:
    """Raise InvalidSignature unless ``body`` was signed with ``secret`` within the tolerance."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, timestamp = lowered["webhook-id"], int(lowered["webhook-timestamp"])
        signatures = lowered["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise InvalidSignature("missing or malformed webhook headers") from exc
    if abs((now if now is not None else time.time()) - timestamp) > TOLERANCE_S:
        raise InvalidSignature("timestamp outside the tolerance")
    expected = sign(secret, msg_id=msg_id, timestamp=timestamp, body=body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidSignature("no matching signature")
