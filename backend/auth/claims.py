"""Unproven claims on an address, and what happens when the address's owner proves it.

An account's email is only a claim until the mailbox proves it. Anyone can type someone
else's address at sign-up or when upgrading an anonymous account, so whatever was built
on the claim (a password, sessions, passkeys, a TOTP authenticator, linked providers)
may belong to someone other than the mailbox's owner. When the owner proves the address
by a route the claimant does not control (a mailed code, a reset link, a provider that
verified it, a verification link opened outside the claimant's session), all of it goes:
the owner starts clean, the claimant is signed out, and the event is logged and mailed.
"""
from __future__ import annotations

from sqlalchemy import delete, select

from backend.auth.factors.models import RecoveryCode, SocialIdentity, TotpCredential
from backend.auth.links import emails
from backend.auth.models import Session, User
from backend.auth.passkeys.models import PasskeyCredential
from backend.auth.security_events import record_event
from backend.auth.sessions import active_session_ids, end_all_sessions
from backend.extensions import db


def claim_had_access(user: User) -> bool:
    """Whether anyone ever signed in to ``user`` (an anonymous upgrade keeps its device session)."""
    return db.session.scalar(select(Session.id).where(Session.user_id == user.id).limit(1)) is not None


def void_unproven_claim(*, user: User, proof: str, ip: str | None) -> list[str]:
    """Remove what an unproven claim built on ``user`` (no commit); returns what was removed."""
    removed: list[str] = []
    if user.password_hash:
        user.password_hash, user.password_changed_at = None, None
        removed.append("password")
    for label, model in (("passkeys", PasskeyCredential), ("linked_providers", SocialIdentity),
                         ("two_factor", TotpCredential)):
        if db.session.execute(delete(model).where(model.user_id == user.id)).rowcount:
            removed.append(label)
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    if active_session_ids(user.id):
        removed.append("sessions")
    end_all_sessions(user=user, reason="account_claimed", commit=False)  # the token version moves either way
    if removed:
        record_event(user_id=user.id, kind="unproven_claim_voided", ip=ip, proof=proof, removed=removed)
        if user.email:
            emails.send_notice(user.email, "We secured your account",
                               "Someone set up sign-in details with your address before you confirmed it. "
                               f"Now that you have, we removed them ({', '.join(removed).replace('_', ' ')}) "
                               "and signed out every device. Sign in with a code sent to this address, "
                               "or choose a password with \"forgot password\".")
    return removed
