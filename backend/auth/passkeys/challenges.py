"""Single-use, short-lived challenges for passkey ceremonies.

The server keeps only a digest of each challenge. A response names its challenge inside
``clientDataJSON``; redeeming it is one conditional UPDATE ... RETURNING, so of twenty
requests carrying the same assertion exactly one gets past this point, the rest are 401.
The challenge is spent even when the response then fails verification: a response is
checked once.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import update

from backend.auth.passkeys.models import PasskeyChallenge
from backend.common.db import utcnow
from backend.common.errors import Unauthorized, ValidationFailed
from backend.extensions import db

CHALLENGE_BYTES = 32


class ChallengeInvalid(Unauthorized):
    code = "passkey_challenge_invalid"

    def __init__(self) -> None:
        super().__init__("This passkey request expired or was already used; start again.")


class ResponseMalformed(ValidationFailed):
    code = "passkey_response_invalid"

    def __init__(self, why: str) -> None:
        super().__init__("The passkey response could not be read.", details={"check": why})


@dataclass(frozen=True)
class Redeemed:
    """A spent challenge: its bytes and the account it was issued for (None: discoverable sign-in)."""

    challenge: bytes
    user_id: uuid.UUID | None


def _digest(challenge: bytes) -> str:
    return hashlib.sha256(challenge).hexdigest()


def b64url_decode(value: Any) -> bytes:
    """Bytes of a base64url string as WebAuthn JSON carries them (padding optional)."""
    if not isinstance(value, str):
        raise ResponseMalformed("encoding")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ResponseMalformed("encoding") from exc


def issue_challenge(*, purpose: str, user_id: uuid.UUID | None) -> bytes:
    """A fresh random challenge for ``purpose``, stored as a digest (no commit)."""
    challenge = secrets.token_bytes(CHALLENGE_BYTES)
    ttl = timedelta(seconds=current_app.config["PASSKEY_CHALLENGE_TTL_S"])
    db.session.add(PasskeyChallenge(challenge_hash=_digest(challenge), purpose=purpose, user_id=user_id,
                                    expires_at=utcnow() + ttl))
    return challenge


def challenge_of(credential: dict[str, Any]) -> bytes:
    """The challenge a credential response answers, read from its ``clientDataJSON``."""
    response = credential.get("response")
    if not isinstance(response, dict):
        raise ResponseMalformed("response")
    try:
        client_data = json.loads(b64url_decode(response.get("clientDataJSON")))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ResponseMalformed("client_data") from exc
    if not isinstance(client_data, dict):
        raise ResponseMalformed("client_data")
    return b64url_decode(client_data.get("challenge"))


def redeem_challenge(*, credential: dict[str, Any], purpose: str) -> Redeemed:
    """Spend the challenge the response answers (in the caller's transaction), or 401."""
    challenge = challenge_of(credential)
    now = utcnow()
    row = db.session.execute(
        update(PasskeyChallenge)
        .where(PasskeyChallenge.challenge_hash == _digest(challenge), PasskeyChallenge.purpose == purpose,
               PasskeyChallenge.consumed_at.is_(None), PasskeyChallenge.expires_at > now)
        .values(consumed_at=now)
        .returning(PasskeyChallenge.user_id)
    ).first()
    if row is None:
        db.session.rollback()
        raise ChallengeInvalid()
    return Redeemed(challenge=challenge, user_id=row.user_id)
