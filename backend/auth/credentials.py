"""Changing credentials: password reset by email, password change, email change.

A reset or a password change ends every session (``password_changed``); a reset never
signs anyone in. An email change takes effect only when the new address confirms it.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select

from backend.auth import lockout
from backend.auth.accounts import SENT, find_by_email, reauthenticate
from backend.auth.claims import void_unproven_claim
from backend.auth.links import emails, onetime
from backend.auth.models import User
from backend.auth.passwords import check_password_policy, hash_password
from backend.auth.principal import forget_state
from backend.auth.sessions import end_all_sessions, start_session
from backend.common.db import utcnow
from backend.common.errors import Conflict, NotFound, ValidationFailed
from backend.common.jobs import enqueue_after_commit
from backend.extensions import db


def _user(user_id: uuid.UUID) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.", code="account_not_found")
    return user


def request_password_reset(*, email: str, ip: str | None) -> dict[str, str]:
    """Queue a reset mail; same answer in the same time whether or not the address has an account.

    Everything that depends on the account (the lookup, the token, the mail) runs in
    ``jobs.accounts.send_password_reset`` after the answer: every address costs the request
    the same work, the limit check and one enqueue.
    """
    lockout.guard(kind="reset", account=email, ip=ip)
    enqueue_after_commit(db.session, "jobs.accounts.send_password_reset", email=email.strip().lower(),
                         requested_at=utcnow().isoformat())
    db.session.commit()
    return SENT


def mail_password_reset(*, email: str, requested_at: datetime) -> bool:
    """Issue and mail a reset link when ``email`` has an account that may reset (commits); idempotent.

    A link issued since the request (a retried job, or a later request's job) answers it already.
    """
    user = find_by_email(email)
    if user is None or user.status == "suspended" or onetime.issued_since(
            user_id=user.id, purpose="reset_password", since=requested_at):
        db.session.rollback()
        return False
    emails.send_password_reset(user)
    db.session.commit()
    return True


def check_reset_link(*, token: str) -> dict[str, Any]:
    """Whether a reset link can still be used (it is not consumed)."""
    row = onetime.check(token=token, purpose="reset_password")
    return {"status": "valid", "message": f"Choose a new password in the app before {row.expires_at:%Y-%m-%d %H:%M} "
                                          "UTC; open this link on the phone where it is installed."}


def _set_password(user: User, password: str) -> None:
    check_password_policy(password, email=user.email)
    user.password_hash, user.password_changed_at = hash_password(password), utcnow()


def reset_password(*, token: str, password: str, ip: str | None) -> None:
    """Redeem a reset link: new password, every session ended, nobody signed in (commits)."""
    lockout.guard(kind="reset", ip=ip)
    check_password_policy(password)  # before redeeming: a refused password must not use up the link
    redeemed = onetime.redeem(token=token, purpose="reset_password")
    user = db.session.get(User, redeemed.user_id)
    if user is None or user.email != redeemed.email:
        db.session.rollback()
        raise onetime.LinkInvalid("This link is for an address the account no longer uses.")
    if user.email_verified_at is None:  # the link proved the mailbox; the claim on it never was
        void_unproven_claim(user=user, proof="reset_link", ip=ip)
        user.email_verified_at = utcnow()
    try:
        _set_password(user, password)
    except ValidationFailed:
        db.session.rollback()
        raise
    end_all_sessions(user=user, reason="password_changed", commit=False)
    emails.send_notice(user.email or "", "Your password was changed",
                       "Your password was reset and every device was signed out. "
                       "If this was not you, reset it again now and contact support.")
    db.session.commit()
    forget_state(users=[user.id], strict=False)


def change_password(*, user_id: uuid.UUID, current_password: str, new_password: str, device_name: str | None,
                    platform: str | None, ip: str | None, user_agent: str | None) -> dict[str, Any]:
    """Change the password after re-authentication; every session ends, this device gets a new one."""
    user = _user(user_id)
    if user.password_hash:
        reauthenticate(user=user, password=current_password, ip=ip)
    _set_password(user, new_password)
    end_all_sessions(user=user, reason="password_changed", commit=False)
    if user.email:
        emails.send_notice(user.email, "Your password was changed",
                           "Your password was changed and your other devices were signed out. "
                           "If this was not you, reset your password now.")
    db.session.commit()
    forget_state(users=[user.id], strict=False)
    return start_session(user=user, device_name=device_name, platform=platform, ip=ip, user_agent=user_agent)


def request_email_change(*, user_id: uuid.UUID, new_email: str, password: str | None, ip: str | None) -> dict:
    """Mail a confirmation link to the new address; nothing changes until it is used."""
    user = _user(user_id)
    if user.password_hash:
        reauthenticate(user=user, password=password, ip=ip)
    lockout.guard(kind="resend", account=new_email, ip=ip)
    if user.email and user.email == new_email.strip().lower():
        raise Conflict("That is already your address.", code="email_unchanged")
    if find_by_email(new_email) is None:
        emails.send_email_change(user, new_email.strip().lower())
    else:
        emails.send_already_registered(new_email)  # the API does not reveal that the address is taken
    db.session.commit()
    return SENT


def confirm_email_change(*, token: str, ip: str | None) -> User:
    """Redeem the link sent to the new address: the account switches to it (commits)."""
    lockout.guard(kind="verify", ip=ip)
    redeemed = onetime.redeem(token=token, purpose="change_email")
    user = _user(redeemed.user_id)
    if db.session.scalar(select(User.id).where(User.email == redeemed.email, User.id != user.id)):
        db.session.rollback()
        raise Conflict("That address now belongs to another account.", code="email_taken")
    old_email = user.email
    forget_state(users=[user.id])
    user.email, user.email_verified_at = redeemed.email, utcnow()
    if old_email:
        emails.send_notice(old_email, "Your email address was changed",
                           f"Your account now uses {redeemed.email}. If this was not you, contact support now.")
    db.session.commit()
    forget_state(users=[user.id], strict=False)
    return user
