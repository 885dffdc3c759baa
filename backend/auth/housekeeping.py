"""Deleting spent and expired sign-in secrets, so their tables stay small."""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete

from backend.auth.factors.models import EmailCode, MfaChallenge
from backend.auth.models import OneTimeToken
from backend.auth.passkeys.models import PasskeyChallenge
from backend.common.db import utcnow
from backend.extensions import db

# Kept a day past expiry: support can still see why a link or code did not work.
RETENTION = timedelta(days=1)


def purge_expired_secrets(*, now: datetime | None = None) -> dict[str, int]:
    """Delete email codes, MFA challenges, one-time tokens and passkey challenges expired for over a day."""
    cutoff = (now or utcnow()) - RETENTION
    removed = {}
    for name, model in (("email_codes", EmailCode), ("mfa_challenges", MfaChallenge),
                        ("one_time_tokens", OneTimeToken), ("passkey_challenges", PasskeyChallenge)):
        removed[name] = db.session.execute(delete(model).where(model.expires_at < cutoff)).rowcount
    db.session.commit()
    return removed
