"""Single-use secrets sent by email: verification, password reset, email change.

The database keeps only a SHA-256 digest. Redemption is one conditional UPDATE ...
RETURNING, so of twenty concurrent redemptions exactly one gets the row.
"""
from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from flask import current_app
from sqlalchemy import select, update

from backend.auth.models import OneTimeToken
from backend.auth.sessions import digest
from backend.common.db import utcnow
from backend.common.errors import DomainError, Gone
from backend.extensions import db


class LinkInvalid(DomainError):
    status, code = 400, "link_invalid"


@dataclass(frozen=True)
class Redeemed:
    """What a redeemed token stood for."""

    user_id: uuid.UUID
    email: str


def issue(*, user_id: uuid.UUID, purpose: str, email: str, ttl_s: int) -> str:
    """Create a token (older unused ones of the same purpose die); returns the secret, shown once."""
    now = utcnow()
    db.session.execute(
        update(OneTimeToken).where(OneTimeToken.user_id == user_id, OneTimeToken.purpose == purpose,
                                   OneTimeToken.used_at.is_(None)).values(used_at=now))
    raw = secrets.token_urlsafe(32)
    db.session.add(OneTimeToken(user_id=user_id, purpose=purpose, token_hash=digest(raw), email=email,
                                created_at=now, expires_at=now + timedelta(seconds=ttl_s)))
    return raw


def issued_since(*, user_id: uuid.UUID, purpose: str, since: datetime) -> bool:
    """Whether a token of ``purpose`` was issued to the user at or after ``since`` (a mail job's done-check)."""
    return db.session.scalar(select(OneTimeToken.id).where(
        OneTimeToken.user_id == user_id, OneTimeToken.purpose == purpose, OneTimeToken.created_at >= since
    ).limit(1)) is not None


def link(path: str, token: str) -> str:
    """An absolute link from PUBLIC_BASE_URL (never from the request's Host header)."""
    return f"{current_app.config['PUBLIC_BASE_URL'].rstrip('/')}{path}?{urlencode({'token': token})}"


def _why_not(raw: str, purpose: str) -> DomainError:
    row = db.session.scalar(select(OneTimeToken).where(OneTimeToken.token_hash == digest(raw),
                                                       OneTimeToken.purpose == purpose))
    if row is None:
        return LinkInvalid("This link is not valid.")
    if row.used_at is not None:
        return Gone("This link was already used or replaced by a newer one.", code="link_used")
    return Gone("This link has expired; ask for a new one.", code="link_expired")


def redeem(*, token: str, purpose: str) -> Redeemed:
    """Consume the token atomically (in the caller's transaction) or raise why it cannot be."""
    row = db.session.execute(
        update(OneTimeToken)
        .where(OneTimeToken.token_hash == digest(token), OneTimeToken.purpose == purpose,
               OneTimeToken.used_at.is_(None), OneTimeToken.expires_at > utcnow())
        .values(used_at=utcnow())
        .returning(OneTimeToken.user_id, OneTimeToken.email)
    ).first()
    if row is None:
        error = _why_not(token, purpose)
        db.session.rollback()
        raise error
    return Redeemed(user_id=row.user_id, email=row.email)


def check(*, token: str, purpose: str) -> OneTimeToken:
    """The live token (not consumed), or raise why it is not usable."""
    row = db.session.scalar(select(OneTimeToken).where(
        OneTimeToken.token_hash == digest(token), OneTimeToken.purpose == purpose,
        OneTimeToken.used_at.is_(None), OneTimeToken.expires_at > utcnow()))
    if row is None:
        raise _why_not(token, purpose)
    return row
