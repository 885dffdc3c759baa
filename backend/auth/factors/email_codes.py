"""Passwordless sign-in: a six-digit code mailed to an address, exchanged for tokens.

Requests always answer the same (no enumeration) and are rate limited per address and
client address. A code lives 10 minutes, is stored as a keyed hash, replaces any earlier
code for the address, and dies after 5 wrong guesses. Redemption is one conditional
UPDATE, so of many concurrent redemptions exactly one wins.
"""
from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from backend.auth import lockout
from backend.auth.claims import void_unproven_claim
from backend.auth.factors.anonymous import EmailInUse, adopt_identity, commit_upgrade, retire_anonymous_sessions
from backend.auth.factors.models import EmailCode
from backend.auth.factors.totp import keyed_hash, sign_in_or_challenge
from backend.auth.models import User
from backend.common.db import utcnow
from backend.common.errors import Unauthorized
from backend.extensions import db

CODE_TTL = timedelta(minutes=10)
MAX_ATTEMPTS = 5


def _code_hash(email: str, code: str) -> str:
    return keyed_hash("email_code", f"{email}:{code}")


def request_email_code(*, email: str, ip: str | None) -> None:
    """Mail a fresh sign-in code to ``email`` (whether or not an account exists)."""
    email = email.strip().lower()
    lockout.guard(kind="email_code", account=email, ip=ip)
    now = utcnow()
    db.session.execute(update(EmailCode).where(EmailCode.email == email, EmailCode.consumed_at.is_(None))
                       .values(consumed_at=now))  # only the newest code works
    code = f"{secrets.randbelow(1_000_000):06d}"
    db.session.add(EmailCode(email=email, code_hash=_code_hash(email, code), expires_at=now + CODE_TTL))
    _send_code(email, code)
    db.session.commit()


def _send_code(email: str, code: str) -> None:
    from backend.common.mail import queue_mail

    minutes = int(CODE_TTL.total_seconds() // 60)
    queue_mail(
        db.session, to=email, subject=f"{code} is your sign-in code",
        text=(f"Your sign-in code is {code}\n\nIt works once, for {minutes} minutes. If you did not ask for it, "
              "ignore this message: nobody can sign in without the code."),
    )


def _redeem(email: str, code: str) -> bool:
    """Consume the live code for ``email`` if ``code`` is it; otherwise count a failed attempt."""
    now = utcnow()
    won = db.session.execute(
        update(EmailCode)
        .where(EmailCode.email == email, EmailCode.code_hash == _code_hash(email, code),
               EmailCode.consumed_at.is_(None), EmailCode.expires_at > now, EmailCode.attempts < MAX_ATTEMPTS)
        .values(consumed_at=now)
        .returning(EmailCode.id)
    ).first()
    if won is not None:
        return True
    db.session.execute(update(EmailCode).where(EmailCode.email == email, EmailCode.consumed_at.is_(None),
                                               EmailCode.expires_at > now)
                       .values(attempts=EmailCode.attempts + 1))
    db.session.commit()
    return False


def verify_email_code(*, email: str, code: str, session: dict[str, Any],
                      anonymous_user: User | None = None) -> dict[str, Any]:
    """Exchange a mailed code for tokens; creates the account if new and marks the email verified."""
    email = email.strip().lower()
    lockout.guard(kind="otp", account=email, ip=session.get("ip"))
    if not (len(code) == 6 and code.isdigit()) or not _redeem(email, code):
        raise Unauthorized("The code is wrong or no longer valid; request a new one.", code="code_invalid")
    lockout.succeeded(kind="otp", account=email)
    user = db.session.scalars(select(User).where(User.email == email)).first()
    if anonymous_user is not None and anonymous_user.is_anonymous:
        if user is not None:
            db.session.rollback()
            raise EmailInUse()
        adopt_identity(anonymous_user, email=email, verified=True)
        retire_anonymous_sessions(anonymous_user)
        commit_upgrade(anonymous_user)
        return sign_in_or_challenge(user=anonymous_user, session=session)
    if user is None:
        user = User(email=email, email_verified_at=utcnow(), created_ip=session.get("ip"))
        db.session.add(user)
        db.session.flush()
    elif user.email_verified_at is None:
        # Whoever registered this address never proved it; the code's holder just did.
        void_unproven_claim(user=user, proof="email_code", ip=session.get("ip"))
        user.email_verified_at = utcnow()
    return sign_in_or_challenge(user=user, session=session)
