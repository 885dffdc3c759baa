"""Email/password accounts: sign-up, verification, sign-in, staff accounts.

No enumeration: sign-up, resend and reset requests answer the same whether or not the
address has an account (resend and reset do the account's work in a job, after the
answer), and sign-in with an unknown address costs one dummy Argon2id verification, so
answer and timing match. Attempt limits run before any hash.
"""
from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import Select, bindparam, select
from sqlalchemy.exc import IntegrityError

from backend.auth import hash_admission, lockout
from backend.auth.deletion import cancel_deletion
from backend.auth.links import emails, onetime
from backend.auth.models import User
from backend.auth.passwords import check_password_policy, hash_password, needs_rehash, verify_password
from backend.auth.principal import forget_state
from backend.auth.sessions import start_session
from backend.common.access import STAFF_ROLES
from backend.common.db import utcnow
from backend.common.errors import Conflict, Forbidden, Unauthorized, ValidationFailed
from backend.common.jobs import enqueue_after_commit
from backend.extensions import db

SENT = {"status": "sent", "message": "If the address can be used, a message is on its way to it."}


def find_by_email(email: str) -> User | None:
    """The account with this address (case-insensitive)."""
    return db.session.scalar(select(User).where(User.email == email.strip().lower()))


def register(*, email: str, password: str, display_name: str | None = None, locale: str | None = None,
             time_zone: str | None = None, ip: str | None = None) -> dict[str, str]:
    """Create an unverified account and mail a verification link; same answer for taken addresses."""
    lockout.guard(kind="register", account=email, ip=ip)
    check_password_policy(password, email=email)
    password_hash = hash_password(password)  # computed either way: taken addresses answer in the same time
    existing = find_by_email(email)
    if existing is None:
        user = User(email=email, password_hash=password_hash, password_changed_at=utcnow(), created_ip=ip,
                    display_name=display_name, locale=locale or "en", time_zone=time_zone or "UTC")
        db.session.add(user)
        try:
            db.session.flush()
        except IntegrityError:  # a concurrent sign-up took the address first
            db.session.rollback()
            existing = find_by_email(email)
        else:
            emails.send_verification(user)
            db.session.commit()
            return SENT
    if existing is not None and existing.email_verified_at is None and existing.password_hash:
        emails.send_verification(existing)
    elif existing is not None:
        emails.send_already_registered(existing.email or email)
    db.session.commit()
    return SENT


def resend_verification(*, email: str, ip: str | None) -> dict[str, str]:
    """Queue a fresh verification link; same answer in the same time whatever the address.

    The account's work (lookup, token, mail) runs in ``jobs.accounts.send_verification_again``,
    like a reset request, so the answer's timing tells nothing about the address.
    """
    lockout.guard(kind="resend", account=email, ip=ip)
    enqueue_after_commit(db.session, "jobs.accounts.send_verification_again", email=email.strip().lower(),
                         requested_at=utcnow().isoformat())
    db.session.commit()
    return SENT


def mail_verification_again(*, email: str, requested_at: datetime) -> bool:
    """Mail a fresh verification link to an unverified, active account (commits); idempotent per request."""
    user = find_by_email(email)
    if user is None or user.email_verified_at is not None or user.status == "suspended" or onetime.issued_since(
            user_id=user.id, purpose="verify_email", since=requested_at):
        db.session.rollback()
        return False
    emails.send_verification(user)
    db.session.commit()
    return True


def verify_email(*, token: str, ip: str | None, claimant_id: Any = None) -> dict[str, str]:
    """Redeem a verification link: the address is confirmed (commits); says what became of the claim.

    ``claimant_id`` is the account whose signed-in app redeems the link (its bearer token).
    A link opened anywhere else proves the mailbox, not the claim: when the account was
    ever signed in before this proof (an anonymous upgrade keeps its device session), its
    password, sessions and sign-in methods are voided (``backend.auth.claims``).
    """
    from backend.auth.claims import claim_had_access, void_unproven_claim

    lockout.guard(kind="verify", ip=ip)
    redeemed = onetime.redeem(token=token, purpose="verify_email")
    user = db.session.get(User, redeemed.user_id)
    if user is None or user.email != redeemed.email:
        db.session.rollback()
        raise onetime.LinkInvalid("This link is for an address the account no longer uses.")
    forget_state(users=[user.id])
    voided: list[str] = []
    if user.email_verified_at is None:
        if claimant_id != user.id and claim_had_access(user):
            voided = void_unproven_claim(user=user, proof="verification_link", ip=ip)
        user.email_verified_at = utcnow()
    db.session.commit()
    forget_state(users=[user.id], strict=False)
    if voided:
        return {"status": "verified_secured",
                "message": "Your email address is confirmed. Sign-in details someone set up with it before "
                           "you confirmed it were removed: sign in with a code sent to this address."}
    return {"status": "verified", "message": "Your email address is confirmed; you can sign in."}


@functools.cache
def _sign_in_query() -> Select:
    """The account by address, and whether it needs a second factor: one query (built once)."""
    from backend.auth.factors.totp import requires_totp  # imported here to keep the modules decoupled

    return select(User, requires_totp(User.id)).where(User.email == bindparam("email"))


def authenticate(*, email: str, password: str, ip: str | None, kind: str = "login") -> User:
    """The account for these credentials (limits first, then one hash either way), or 401.

    A hashing slot is taken first: a busy server's 429 uses up none of the account's attempts.
    """
    return check_credentials(email=email, password=password, ip=ip, kind=kind)[0]


def check_credentials(*, email: str, password: str, ip: str | None, kind: str = "login") -> tuple[User, bool]:
    """``authenticate``, and whether signing in as the account needs a second factor (TOTP)."""
    with hash_admission.slot():
        lockout.guard(kind=kind, account=email, ip=ip)
        user, needs_totp = db.session.execute(_sign_in_query(), {"email": email.strip().lower()}).first() or (
            None, False)
        if not verify_password(user.password_hash if user else None, password) or user is None:
            raise Unauthorized("The email or password is not correct.", code="invalid_credentials")
    lockout.succeeded(kind=kind, account=email)
    if user.status == "suspended":
        raise Forbidden("This account is suspended.", code="account_suspended")
    if user.password_hash and needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)  # parameters changed since: upgrade now
    return user, needs_totp


def login(*, email: str, password: str, device_name: str | None, platform: str | None, ip: str | None,
          user_agent: str | None) -> dict[str, Any]:
    """Password sign-in: a session's tokens, or a two-factor challenge."""
    from backend.auth.factors import totp  # imported here to keep the modules decoupled

    user, needs_totp = check_credentials(email=email, password=password, ip=ip)
    if current_app.config["AUTH_REQUIRE_VERIFIED_EMAIL"] and user.email_verified_at is None:
        db.session.commit()  # keep a rehash
        raise Forbidden("Confirm your email address first; we can send the link again.", code="email_not_verified")
    if user.status == "pending_deletion":
        cancel_deletion(user=user, commit=False)  # signing in keeps the account
    if db.session.dirty:  # a rehash or a cancelled deletion is kept even if what follows fails
        db.session.commit()
        forget_state(users=[user.id], strict=False)
    # Usually nothing changed: no commit here, so the user row is not expired and read
    # again; the session below is written in the transaction this sign-in already has.
    if needs_totp:
        return totp.create_mfa_challenge(user=user, device_name=device_name, platform=platform, ip=ip,
                                         user_agent=user_agent)
    return start_session(user=user, device_name=device_name, platform=platform, ip=ip, user_agent=user_agent)


def load_user(user_id: Any) -> User:
    """The account of a signed-in principal."""
    user = db.session.get(User, user_id)
    if user is None:
        raise Unauthorized("This account no longer exists.", code="session_revoked")
    return user


def reauthenticate(*, user: User, password: str | None, ip: str | None) -> None:
    """Confirm the signed-in user's password before a sensitive change (limited like sign-in)."""
    lockout.guard(kind="reauth", account=str(user.id), ip=ip)
    if not password or not verify_password(user.password_hash, password):
        raise Unauthorized("The password is not correct.", code="invalid_credentials")
    lockout.succeeded(kind="reauth", account=str(user.id))


def create_staff_account(*, email: str, password: str, role: str) -> User:
    """Create a staff account with a verified address, or give an existing one the role and password."""
    if role not in STAFF_ROLES:
        raise ValidationFailed(f"Staff roles are {', '.join(sorted(STAFF_ROLES))}.", code="invalid_role")
    check_password_policy(password, email=email)
    user = find_by_email(email)
    if user is None:
        user = User(email=email)
        db.session.add(user)
    else:
        forget_state(users=[user.id])
    user.role, user.status = role, "active"
    user.password_hash, user.password_changed_at = hash_password(password), utcnow()
    user.email_verified_at = user.email_verified_at or utcnow()
    db.session.commit()
    forget_state(users=[user.id], strict=False)
    return user


def suspend_account(*, user_id: Any, reason: str | None = None) -> User:
    """Suspend an account: every session ends now (``account_suspended``) and sign-in is refused (commits)."""
    from backend.auth.sessions import end_all_sessions

    user = load_user(user_id)
    user.status, user.suspended_at, user.suspended_reason = "suspended", utcnow(), (reason or "")[:500] or None
    end_all_sessions(user=user, reason="account_suspended")
    return user


def reinstate_account(*, user_id: Any) -> User:
    """Lift a suspension; the user signs in again (commits)."""
    user = load_user(user_id)
    forget_state(users=[user.id])
    user.status, user.suspended_at, user.suspended_reason = "active", None, None
    db.session.commit()
    forget_state(users=[user.id], strict=False)
    return user


def mark_email_verified(*, user_id: Any) -> User:
    """Staff confirm an account's address by hand, e.g. after a support check (commits)."""
    user = load_user(user_id)
    if user.email is None:
        raise Conflict("This account has no email address to verify.", code="no_email")
    if user.email_verified_at is None:
        forget_state(users=[user.id])
        user.email_verified_at = utcnow()
        db.session.commit()
        forget_state(users=[user.id], strict=False)
    return user
