"""Accounts behind Google/Apple sign-in: keyed by (provider, subject), linked, unlinked.

A new identity joins an existing account by email only when the provider vouches for the
address (``email_verified``). An account whose email we never verified could have been
registered by anyone: the provider's proof wins, and the unproven registrant's password,
sessions and other sign-in methods are voided (``backend.auth.claims``).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from backend.auth import lockout
from backend.auth.claims import void_unproven_claim
from backend.auth.factors.anonymous import EmailInUse, adopt_identity, commit_upgrade, retire_anonymous_sessions
from backend.auth.factors.id_tokens import VerifiedIdentity, verify_id_token
from backend.auth.factors.models import SocialIdentity
from backend.auth.factors.totp import sign_in_or_challenge
from backend.auth.models import User
from backend.auth.principal import forget_state
from backend.auth.ways_in import APPLE_RELAY_DOMAIN, lock_user, refuse_last_way_in
from backend.common.db import utcnow
from backend.common.errors import Conflict, NotFound
from backend.common.pagination import Page, paginate
from backend.extensions import db


def _find(provider: str, subject: str) -> SocialIdentity | None:
    return db.session.scalars(select(SocialIdentity).where(
        SocialIdentity.provider == provider, SocialIdentity.subject == subject)).first()


def _attach(user: User, found: VerifiedIdentity) -> SocialIdentity:
    if db.session.scalar(select(SocialIdentity.id).where(
            SocialIdentity.user_id == user.id, SocialIdentity.provider == found.provider)) is not None:
        raise Conflict(f"Another {found.provider} account is already linked; unlink it first.",
                       code="provider_already_linked")
    identity = SocialIdentity(user_id=user.id, provider=found.provider, subject=found.subject, last_used_at=utcnow())
    _remember_email(identity, found)
    db.session.add(identity)
    return identity


def _remember_email(identity: SocialIdentity, found: VerifiedIdentity) -> None:
    # Apple sends the email on the first sign-in only: never forget one we have.
    if found.email:
        identity.email, identity.email_verified = found.email, found.email_verified
        identity.is_private_email = found.is_private_email or found.email.endswith(APPLE_RELAY_DOMAIN)


def _account_for(found: VerifiedIdentity, ip: str | None) -> User:
    """The account a first sign-in with ``found`` belongs to: linked by verified email, or new."""
    owner = db.session.scalars(select(User).where(User.email == found.email)).first() if found.email else None
    if owner is not None:
        if not found.email_verified:
            code = "account_exists_link_required" if owner.email_verified_at else "account_exists_unverified"
            raise Conflict("An account with this email exists; sign in to it and link this provider.",
                           code=code, details={"provider": found.provider})
        if owner.email_verified_at is None:
            # The provider proved the mailbox; the registration never did. The verified
            # sign-in takes the account, and what the unproven registrant set up goes.
            void_unproven_claim(user=owner, proof=found.provider, ip=ip)
            owner.email_verified_at = utcnow()
        return owner
    verified_email = found.email if found.email_verified else None
    user = User(email=verified_email, email_verified_at=utcnow() if verified_email else None, created_ip=ip)
    db.session.add(user)
    db.session.flush()
    return user


def sign_in_with_id_token(*, provider: str, id_token: str, nonce: str | None, session: dict[str, Any],
                          anonymous_user: User | None = None) -> dict[str, Any]:
    """Sign in (or up) with a provider's ID token; an anonymous caller is upgraded in place."""
    # Limited like every sign-in, before the signature check (and any JWKS fetch) costs anything.
    lockout.guard(kind="social", ip=session.get("ip"))
    found = verify_id_token(provider=provider, id_token=id_token, nonce=nonce)
    for attempt in range(2):  # a racing first sign-in of the same subject loses once, then finds it
        try:
            return _sign_in(found, session, anonymous_user)
        except IntegrityError:
            db.session.rollback()
            if attempt:
                raise
    raise AssertionError("unreachable")


def _sign_in(found: VerifiedIdentity, session: dict[str, Any], anonymous_user: User | None) -> dict[str, Any]:
    identity = _find(found.provider, found.subject)
    if identity is not None:
        if anonymous_user is not None and identity.user_id != anonymous_user.id:
            raise Conflict("This sign-in already belongs to another account.", code="identity_in_use")
        _remember_email(identity, found)
        identity.last_used_at = utcnow()
        user = db.session.get(User, identity.user_id)
        db.session.flush()
        return sign_in_or_challenge(user=user, session=session)
    if anonymous_user is not None and anonymous_user.is_anonymous:
        adopt_identity(anonymous_user, email=found.email if found.email_verified else None, verified=True)
        _attach(anonymous_user, found)
        retire_anonymous_sessions(anonymous_user)
        commit_upgrade(anonymous_user)
        return sign_in_or_challenge(user=anonymous_user, session=session)
    user = _account_for(found, session.get("ip"))
    _attach(user, found)
    db.session.flush()
    return sign_in_or_challenge(user=user, session=session)


def link_identity(*, user: User, provider: str, id_token: str, nonce: str | None) -> SocialIdentity:
    """Link a provider account to the signed-in ``user`` (an anonymous one is upgraded)."""
    found = verify_id_token(provider=provider, id_token=id_token, nonce=nonce)
    identity = _find(found.provider, found.subject)
    if identity is not None:
        if identity.user_id != user.id:
            raise Conflict("This sign-in already belongs to another account.", code="identity_in_use")
        return identity
    was_anonymous = user.is_anonymous
    if was_anonymous:
        adopt_identity(user, email=found.email if found.email_verified else None, verified=True)
    identity = _attach(user, found)
    try:
        db.session.commit()
    except IntegrityError as exc:  # a racing request linked the subject or claimed the email first
        db.session.rollback()
        if _find(found.provider, found.subject) is not None:
            raise Conflict("This sign-in already belongs to another account.", code="identity_in_use") from exc
        raise EmailInUse() from exc
    if was_anonymous:
        forget_state(users=[user.id], strict=False)
    return identity


def list_identities(*, user: User, cursor: str | None, limit: int) -> Page:
    """One page of the user's linked identities, newest first."""
    return paginate(db.session, select(SocialIdentity).where(SocialIdentity.user_id == user.id),
                    order=(SocialIdentity.created_at, SocialIdentity.id), cursor=cursor, limit=limit)


def unlink_identity(*, user: User, provider: str) -> None:
    """Unlink ``provider`` unless it is the last way left to sign in."""
    locked = lock_user(user.id)  # two unlinks (or an unlink and a passkey removal) take turns
    identity = db.session.scalars(select(SocialIdentity).where(
        SocialIdentity.user_id == user.id, SocialIdentity.provider == provider)).first()
    if identity is None:
        raise NotFound(f"No {provider} account is linked.", code="identity_not_found")
    refuse_last_way_in(locked, without_identity=identity.id)
    db.session.delete(identity)
    db.session.commit()
