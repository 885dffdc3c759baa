"""The staff console's view of accounts: search and filters by index, and one user's profile.

Search is exact or by prefix, never a substring scan: a UUID is looked up by key, any
other text matches the start of the email (``ix_users_email_prefix``) or of the
lower-cased display name (``ix_users_display_name_prefix``). Lists page by keyset on
(created_at, id) with ``ix_users_created_at_id``; nothing counts the whole table.
"""
from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, or_, select

from backend.auth.deletion import deletion_due_at
from backend.auth.factors.export import export_sign_in_factors
from backend.auth.models import Session, User
from backend.common.db import utcnow
from backend.common.errors import NotFound
from backend.extensions import db

STATUSES = ("active", "suspended", "pending_deletion")
PLATFORMS = ("ios", "android", "web")


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _as_uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def users_query(*, q: str | None = None, status: str | None = None, role: str | None = None,
                platform: str | None = None, signed_up_from: date | None = None,
                signed_up_to: date | None = None) -> Select:
    """Accounts matching a search text and filters (page it by (created_at, id))."""
    stmt = select(User)
    text = (q or "").strip()
    if text:
        user_id = _as_uuid(text)
        if user_id is not None:
            stmt = stmt.where(User.id == user_id)
        else:
            prefix = _escape_like(text.lower()) + "%"
            stmt = stmt.where(or_(User.email.like(prefix), func.lower(User.display_name).like(prefix)))
    if status:
        stmt = stmt.where(User.status == status)
    if role:
        stmt = stmt.where(User.role == role)
    if platform:
        # A user "is on" a platform when one of their sessions signed in from it.
        stmt = stmt.where(exists().where(Session.user_id == User.id, Session.platform == platform))
    if signed_up_from:
        stmt = stmt.where(User.created_at >= datetime.combine(signed_up_from, time.min, tzinfo=UTC))
    if signed_up_to:
        stmt = stmt.where(User.created_at < datetime.combine(signed_up_to + timedelta(days=1), time.min, tzinfo=UTC))
    return stmt


def get_user(user_id: uuid.UUID) -> User:
    """One account, or ``account_not_found``."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.", code="account_not_found")
    return user


def user_state(user_id: uuid.UUID) -> dict[str, Any] | None:
    """What staff actions change, for the audit log's before/after (None once erased)."""
    db.session.flush()  # called just before a commit too: count what is about to be written
    user = db.session.get(User, user_id)
    if user is None:
        return None
    live = db.session.scalar(select(func.count()).select_from(Session).where(
        Session.user_id == user_id, Session.revoked_at.is_(None)))
    return {"status": user.status, "role": user.role, "email_verified": user.email_verified_at is not None,
            "token_version": user.token_version, "suspended_reason": user.suspended_reason,
            "deletion_requested_at": user.deletion_requested_at, "live_sessions": live}


def user_profile(user_id: uuid.UUID, *, session_limit: int = 50) -> dict[str, Any]:
    """Profile, live sessions, linked sign-ins and two-factor state; never a secret or token."""
    user = get_user(user_id)
    sessions = list(db.session.scalars(
        select(Session).where(Session.user_id == user.id, Session.revoked_at.is_(None),
                              Session.expires_at > utcnow())
        .order_by(Session.last_used_at.desc()).limit(session_limit)))
    return {"user": user, "sessions": sessions, "deletion_due_at": deletion_due_at(user),
            **export_sign_in_factors(user.id)}
