"""Sessions: issuance, refresh rotation with reuse detection, revocation.

Refresh tokens are 256-bit random strings shown once and stored as SHA-256 digests.
Each use replaces the token; the replacement is derived from the presented token with
an HMAC under SECRET_KEY and the access token is signed deterministically from stored
values, so a second refresh with the same token inside ``REFRESH_GRACE_S`` (two racing
requests from one phone, a retry after a lost answer) gets *the same new pair* without
any secret being stored. After the grace window a reused token revokes its whole
session (``refresh_token_reused``).

A session's ``last_used_at`` (and the user's ``last_active_at``) move on sign-in and on
every refresh, i.e. at least once per access-token lifetime of an active app; access
requests themselves write nothing, which keeps ``GET /v1/me`` free of database writes.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm.attributes import set_committed_value

from backend.auth.models import RefreshToken, Session, User
from backend.auth.principal import forget_state, session_ended
from backend.auth.tokens import issue_access_token
from backend.common.db import utcnow
from backend.common.errors import NotFound, Unauthorized
from backend.extensions import db


def digest(token: str) -> str:
    """SHA-256 hex digest of a secret token (what the database keeps)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _successor_secret(presented: str) -> str:
    key = hashlib.sha256(b"groundwork.refresh-successor:" + current_app.config["SECRET_KEY"].encode()).digest()
    return base64.urlsafe_b64encode(hmac.new(key, presented.encode(), hashlib.sha256).digest()).rstrip(b"=").decode()


def public_user(user: User) -> dict[str, Any]:
    """The user summary carried in token responses."""
    return {
        "id": str(user.id), "email": user.email, "email_verified": user.email_verified_at is not None,
        "role": user.role, "display_name": user.display_name, "is_anonymous": user.is_anonymous,
    }


def _token_body(user: User, session_id: uuid.UUID, refresh_id: uuid.UUID, issued_at: datetime,
                raw_refresh: str) -> dict[str, Any]:
    access = issue_access_token(user_id=user.id, session_id=session_id, role=user.role,
                                token_version=user.token_version, issued_at=issued_at, jti=refresh_id)
    return {
        "access_token": access, "refresh_token": raw_refresh, "token_type": "Bearer",
        "expires_in": current_app.config["ACCESS_TOKEN_TTL_S"], "session_id": str(session_id),
        "user": public_user(user),
    }


def _truncate(value: str | None, length: int) -> str | None:
    return value[:length] if value else None


# A sign-in's writes in one statement (one round trip, no unit of work): the session, its
# first refresh token (the foreign key is checked at the end of the statement, when the
# session row exists) and the user's last activity.
_sessions, _refresh_tokens, _users = Session.__table__, RefreshToken.__table__, User.__table__
_OPEN_SESSION = (
    update(_users).where(_users.c.id == bindparam("user_id")).values(last_active_at=bindparam("now"))
    .add_cte(insert(_sessions).values(
        id=bindparam("session_id"), user_id=bindparam("user_id"), device_name=bindparam("device_name"),
        platform=bindparam("platform"), ip=bindparam("ip"), user_agent=bindparam("user_agent"),
        created_at=bindparam("now"), last_used_at=bindparam("now"), expires_at=bindparam("expires_at"),
    ).cte("new_session"))
    .add_cte(insert(_refresh_tokens).values(
        id=bindparam("refresh_id"), session_id=bindparam("session_id"), token_hash=bindparam("token_hash"),
        created_at=bindparam("now"),
    ).cte("new_refresh_token"))
)


def start_session(*, user: User, device_name: str | None, platform: str | None, ip: str | None,
                  user_agent: str | None) -> dict[str, Any]:
    """Open a session for ``user`` and return the token response body (commits)."""
    now = utcnow()
    session_id, refresh_id, raw = uuid.uuid4(), uuid.uuid4(), secrets.token_urlsafe(32)
    db.session.flush()  # a user created in this transaction (anonymous sign-in) is written first
    db.session.execute(_OPEN_SESSION, {
        "user_id": user.id, "session_id": session_id, "refresh_id": refresh_id, "now": now,
        "device_name": _truncate(device_name, 100), "platform": _truncate(platform, 20), "ip": _truncate(ip, 45),
        "user_agent": _truncate(user_agent, 300), "token_hash": digest(raw),
        "expires_at": now + timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL_S"]),
    })
    set_committed_value(user, "last_active_at", now)  # what the statement wrote, without another flush
    body = _token_body(user, session_id, refresh_id, now, raw)
    db.session.commit()
    return body


def refresh_session(*, refresh_token: str, ip: str | None) -> dict[str, Any]:
    """Rotate a refresh token: a new pair, the same pair again inside the grace window, or a 401 saying why."""
    now = utcnow()
    row = db.session.execute(
        select(RefreshToken, Session, User).join(Session, RefreshToken.session_id == Session.id)
        .join(User, Session.user_id == User.id)
        .where(RefreshToken.token_hash == digest(refresh_token))
        .with_for_update(of=RefreshToken)  # racing refreshes of one token queue up here
    ).first()
    if row is None:
        db.session.rollback()
        raise Unauthorized("The refresh token is not valid.", code="token_invalid")
    token, session, user = row
    if session.revoked_at is not None:
        db.session.rollback()
        raise session_ended(session.revoked_reason or "signed_out")
    if user.status == "suspended":
        db.session.rollback()
        raise session_ended("account_suspended")
    if session.expires_at <= now:
        db.session.rollback()
        raise Unauthorized("This session has expired; sign in again.", code="session_expired")
    if token.used_at is not None:
        grace = timedelta(seconds=current_app.config["REFRESH_GRACE_S"])
        successor = db.session.get(RefreshToken, token.replaced_by_id) if token.replaced_by_id else None
        raw = _successor_secret(refresh_token)
        if now - token.used_at <= grace and successor is not None and successor.token_hash == digest(raw):
            body = _token_body(user, session.id, successor.id, successor.created_at, raw)
            db.session.rollback()
            return body
        _revoke(session_ids=[session.id], reason="refresh_token_reused", now=now)
        db.session.commit()
        forget_state(sessions=[session.id], strict=False)
        raise session_ended("refresh_token_reused")
    raw = _successor_secret(refresh_token)
    successor = RefreshToken(id=uuid.uuid4(), session_id=session.id, token_hash=digest(raw), created_at=now)
    db.session.add(successor)
    db.session.flush()
    token.used_at, token.replaced_by_id = now, successor.id
    session.last_used_at = now
    session.expires_at = now + timedelta(seconds=current_app.config["REFRESH_TOKEN_TTL_S"])
    if ip:
        session.ip = ip[:45]
    user.last_active_at = now
    body = _token_body(user, session.id, successor.id, successor.created_at, raw)
    db.session.commit()
    return body


def _revoke(*, session_ids: list[uuid.UUID], reason: str, now: Any = None) -> None:
    if session_ids:
        db.session.execute(
            update(Session).where(Session.id.in_(session_ids), Session.revoked_at.is_(None))
            .values(revoked_at=now or utcnow(), revoked_reason=reason)
        )


def active_session_ids(user_id: uuid.UUID) -> list[uuid.UUID]:
    """IDs of the user's sessions that are not revoked."""
    return list(db.session.scalars(
        select(Session.id).where(Session.user_id == user_id, Session.revoked_at.is_(None))))


def end_session(*, user_id: uuid.UUID, session_id: uuid.UUID, reason: str = "signed_out") -> None:
    """Revoke one of the user's sessions (404 when it is not theirs)."""
    session = db.session.get(Session, session_id)
    if session is None or session.user_id != user_id:
        raise NotFound("No such session.", code="session_not_found")
    forget_state(sessions=[session_id])
    _revoke(session_ids=[session_id], reason=reason)
    db.session.commit()
    forget_state(sessions=[session_id], strict=False)


def end_all_sessions(*, user: User, reason: str, keep: uuid.UUID | None = None, commit: bool = True) -> None:
    """Revoke every session of ``user`` (but ``keep``); bumps the token version unless one is kept."""
    ids = [sid for sid in active_session_ids(user.id) if sid != keep]
    forget_state(users=[user.id], sessions=ids)
    _revoke(session_ids=ids, reason=reason)
    if keep is None:
        user.token_version += 1
    if commit:
        db.session.commit()
        forget_state(users=[user.id], sessions=ids, strict=False)


def list_sessions(*, user_id: uuid.UUID) -> Any:
    """Select statement of the user's live sessions (for cursor pagination)."""
    return select(Session).where(Session.user_id == user_id, Session.revoked_at.is_(None),
                                 Session.expires_at > utcnow())
