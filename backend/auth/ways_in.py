"""The ways a user can still sign in: removing one (a provider link, a passkey) never removes the last.

Counted: a password; a linked Google or Apple account; a passkey that is not disabled; a
verified, real inbox (it can receive a sign-in code; Apple's relay address only forwards
mail while the Apple link exists, so it does not count).
"""
from __future__ import annotations

import uuid

from sqlalchemy import func, select

from backend.auth.factors.models import SocialIdentity
from backend.auth.models import User
from backend.auth.passkeys.models import PasskeyCredential
from backend.common.errors import Conflict, NotFound
from backend.extensions import db

APPLE_RELAY_DOMAIN = "@privaterelay.appleid.com"


def lock_user(user_id: uuid.UUID) -> User:
    """The user row, locked: two removals at once take turns, so they cannot both pass the check."""
    user = db.session.get(User, user_id, with_for_update=True)
    if user is None:
        raise NotFound("No such account.", code="account_not_found")
    return user


def has_other_way_in(user: User, *, without_identity: uuid.UUID | None = None,
                     without_passkey: uuid.UUID | None = None) -> bool:
    """Whether ``user`` can still sign in once the given identity or passkey is gone."""
    if user.password_hash:
        return True
    if user.email and user.email_verified_at and not user.email.endswith(APPLE_RELAY_DOMAIN):
        return True
    identities = select(func.count()).select_from(SocialIdentity).where(SocialIdentity.user_id == user.id)
    if without_identity is not None:
        identities = identities.where(SocialIdentity.id != without_identity)
    if db.session.scalar(identities):
        return True
    passkeys = select(func.count()).select_from(PasskeyCredential).where(
        PasskeyCredential.user_id == user.id, PasskeyCredential.disabled_at.is_(None))
    if without_passkey is not None:
        passkeys = passkeys.where(PasskeyCredential.id != without_passkey)
    return bool(db.session.scalar(passkeys))


def refuse_last_way_in(user: User, **without: uuid.UUID | None) -> None:
    """409 ``last_sign_in_method`` when removing ``without`` would lock the user out."""
    if not has_other_way_in(user, **without):
        raise Conflict("This is the last way to sign in to the account; add a password, a passkey or another "
                       "provider first.", code="last_sign_in_method")
