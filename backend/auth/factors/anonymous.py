"""Anonymous (device-only) accounts, and their upgrade in place to full accounts.

An upgrade keeps the user id, so everything hanging off it (devices, profile, events)
stays. An email that already belongs to another account is a 409, never a merge.
"""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.auth import lockout
from backend.auth.links import emails
from backend.auth.models import User
from backend.auth.passwords import check_password_policy, hash_password
from backend.auth.principal import forget_state
from backend.auth.sessions import end_all_sessions, public_user, start_session
from backend.common.access import Principal
from backend.common.db import utcnow
from backend.common.errors import Conflict, NotFound
from backend.extensions import db


class EmailInUse(Conflict):
    code = "email_in_use"

    def __init__(self) -> None:
        super().__init__("This email already belongs to another account; sign in to that account instead.")


def caller(principal: Principal) -> User:
    """The signed-in user behind ``principal``."""
    user = db.session.get(User, uuid.UUID(str(principal.user_id)))
    if user is None:
        raise NotFound("No such account.", code="account_not_found")
    return user


def start_anonymous(*, device_name: str | None, platform: str | None, ip: str | None,
                    user_agent: str | None) -> dict[str, Any]:
    """Create a device-only account and sign it in."""
    lockout.guard(kind="anonymous", ip=ip)
    user = User(is_anonymous=True, created_ip=ip)
    db.session.add(user)
    db.session.flush()
    return start_session(user=user, device_name=device_name, platform=platform, ip=ip, user_agent=user_agent)


def email_taken(email: str, *, by_other_than: uuid.UUID) -> bool:
    """Whether ``email`` belongs to an account other than ``by_other_than``."""
    owner = db.session.scalar(select(User.id).where(User.email == email))
    return owner is not None and owner != by_other_than


def adopt_identity(user: User, *, email: str | None, verified: bool) -> None:
    """Turn an anonymous ``user`` into a full account in place (no commit)."""
    if email and email_taken(email, by_other_than=user.id):
        raise EmailInUse()
    forget_state(users=[user.id])  # /v1/me and claims caches must not keep "anonymous"
    user.is_anonymous = False
    if email:
        user.email = email
        user.email_verified_at = utcnow() if verified else None


def retire_anonymous_sessions(user: User) -> None:
    """End the anonymous account's sessions when a sign-in upgrades it into a new session (no commit).

    The sign-in answers with a new session's tokens; the device-only tokens it replaces
    must not keep working beside them (``account_upgraded``).
    """
    end_all_sessions(user=user, reason="account_upgraded", commit=False)


def commit_upgrade(user: User) -> None:
    """Commit an upgrade; a concurrent claim of the same email turns into a 409."""
    try:
        db.session.commit()
    except IntegrityError as exc:
        db.session.rollback()
        raise EmailInUse() from exc
    forget_state(users=[user.id], strict=False)


def upgrade_with_password(*, user: User, email: str, password: str) -> dict[str, Any]:
    """Give an anonymous account an email and password; returns the updated user summary."""
    if not user.is_anonymous:
        raise Conflict("This account is not anonymous.", code="not_anonymous")
    email = email.strip().lower()
    check_password_policy(password, email=email)
    if email_taken(email, by_other_than=user.id):  # before hashing: a cheap refusal
        raise EmailInUse()
    password_hash = hash_password(password)
    adopt_identity(user, email=email, verified=False)
    user.password_hash, user.password_changed_at = password_hash, utcnow()
    emails.send_verification(user)  # queued; sent once the upgrade commits
    commit_upgrade(user)
    return public_user(user)
