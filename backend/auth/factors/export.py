"""The sign-in factors part of a user's data export: linked identities and two-factor state.

Secrets (TOTP seed, recovery code hashes) are never exported, only their existence.
"""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from backend.auth.factors.models import RecoveryCode, SocialIdentity, TotpCredential
from backend.extensions import db


def export_sign_in_factors(user_id: uuid.UUID) -> dict[str, Any]:
    """Linked Google/Apple identities and whether two-factor is on, for the export."""
    identities = db.session.scalars(
        select(SocialIdentity).where(SocialIdentity.user_id == user_id).order_by(SocialIdentity.created_at))
    totp = db.session.get(TotpCredential, user_id)
    unused_codes = db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None)))
    return {
        "identities": [
            {"provider": i.provider, "subject": i.subject, "email": i.email, "linked_at": i.created_at.isoformat(),
             "last_used_at": i.last_used_at.isoformat() if i.last_used_at else None}
            for i in identities
        ],
        "two_factor": {
            "totp_enabled": bool(totp and totp.confirmed_at),
            "enabled_at": totp.confirmed_at.isoformat() if totp and totp.confirmed_at else None,
            "recovery_codes_left": unused_codes,
        },
    }
