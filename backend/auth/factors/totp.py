"""TOTP two-factor: enrolment, recovery codes, and the second step of a sign-in.

Secrets are encrypted at rest (a key derived from SECRET_KEY) and returned once, at
enrolment. Codes, recovery codes and MFA tokens are consumed by conditional UPDATEs, so
a code is accepted once even when many requests race for it.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from datetime import timedelta
from typing import Any

import pyotp
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy import ColumnElement, delete, exists, func, select, update

from backend.auth import lockout
from backend.auth.deletion import cancel_deletion
from backend.auth.factors.models import MfaChallenge, RecoveryCode, TotpCredential
from backend.auth.models import User
from backend.auth.principal import forget_state
from backend.auth.sessions import start_session
from backend.common.db import utcnow
from backend.common.errors import Conflict, Forbidden, Unauthorized
from backend.extensions import db

ISSUER = "Groundwork"
STEP_S = 30
VALID_WINDOW = 1  # one step either side: phones' clocks drift
RECOVERY_CODE_COUNT = 10
MFA_TOKEN_TTL = timedelta(minutes=5)
MFA_MAX_FAILURES = 5
METHODS = ["totp", "recovery_code"]
_RECOVERY_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i look-alikes


def keyed_hash(purpose: str, value: str) -> str:
    """HMAC-SHA256 of a secret under SECRET_KEY (short codes cannot be brute-forced offline)."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def _fernet() -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"groundwork-totp-secret").derive(
        current_app.config["SECRET_KEY"].encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _decrypt(credential: TotpCredential) -> str:
    try:
        return _fernet().decrypt(credential.secret_encrypted.encode()).decode()
    except InvalidToken:  # SECRET_KEY changed: the secret is unreadable, so no code can match
        return ""


def _normalize(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def _credential(user_id: Any, *, confirmed: bool) -> TotpCredential | None:
    query = select(TotpCredential).where(TotpCredential.user_id == user_id)
    if confirmed:
        query = query.where(TotpCredential.confirmed_at.is_not(None))
    return db.session.scalars(query).first()


def requires_totp(user_id: Any) -> ColumnElement[bool]:
    """SQL: whether signing in as this user needs a second factor (a confirmed TOTP credential).

    Password sign-in asks it in the query that finds the account (one round trip fewer).
    """
    return exists().where(TotpCredential.user_id == user_id, TotpCredential.confirmed_at.is_not(None))


def user_requires_totp(user: User) -> bool:
    """Whether signing in as ``user`` needs a second factor."""
    return bool(db.session.scalar(select(requires_totp(user.id))))


def totp_status(*, user: User) -> dict[str, Any]:
    """Whether TOTP is on, and how many recovery codes are left."""
    remaining = db.session.scalar(select(func.count()).select_from(RecoveryCode).where(
        RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))
    return {"totp_enabled": user_requires_totp(user), "recovery_codes_remaining": remaining or 0}


def start_totp(*, user: User) -> dict[str, str]:
    """Create (or replace) a pending TOTP secret and return it with its provisioning URI."""
    if user.is_anonymous:
        raise Conflict("Upgrade the anonymous account before turning on two-factor.", code="anonymous_account")
    credential = db.session.get(TotpCredential, user.id, with_for_update=True)
    if credential is not None and credential.confirmed_at is not None:
        raise Conflict("Two-factor is already on; turn it off first.", code="totp_already_enabled")
    secret = pyotp.random_base32(length=32)
    encrypted = _fernet().encrypt(secret.encode()).decode()
    if credential is None:
        db.session.add(TotpCredential(user_id=user.id, secret_encrypted=encrypted))
    else:
        credential.secret_encrypted, credential.last_used_step = encrypted, None
    db.session.commit()
    uri = pyotp.TOTP(secret).provisioning_uri(name=user.email or str(user.id), issuer_name=ISSUER)
    return {"secret": secret, "otpauth_uri": uri}


def _matching_step(secret: str, code: str) -> int | None:
    if not secret or len(code) != 6 or not code.isdigit():
        return None
    totp, now_step = pyotp.TOTP(secret), int(time.time()) // STEP_S
    for step in range(now_step - VALID_WINDOW, now_step + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.at(step * STEP_S), code):
            return step
    return None


def _claim_step(user_id: Any, step: int, *, confirmed: bool) -> bool:
    """Record ``step`` as used unless it (or a later one) already was: atomic replay guard."""
    query = (
        update(TotpCredential)
        .where(TotpCredential.user_id == user_id,
               (TotpCredential.last_used_step.is_(None)) | (TotpCredential.last_used_step < step))
        .values(last_used_step=step)
        .returning(TotpCredential.user_id)
    )
    state = TotpCredential.confirmed_at.is_not(None) if confirmed else TotpCredential.confirmed_at.is_(None)
    query = query.where(state)
    return db.session.execute(query).first() is not None


def _new_recovery_codes(user_id: Any) -> list[str]:
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = ["".join(secrets.choice(_RECOVERY_ALPHABET) for _ in range(10)) for _ in range(RECOVERY_CODE_COUNT)]
    db.session.add_all(RecoveryCode(user_id=user_id, code_hash=keyed_hash("recovery", c)) for c in codes)
    return [f"{c[:5]}-{c[5:]}" for c in codes]


def confirm_totp(*, user: User, code: str) -> list[str]:
    """Turn TOTP on with a first valid code; return the recovery codes (shown this once)."""
    credential = _credential(user.id, confirmed=False)
    if credential is None:
        raise Conflict("Start two-factor enrolment first.", code="totp_not_started")
    if credential.confirmed_at is not None:
        raise Conflict("Two-factor is already on.", code="totp_already_enabled")
    lockout.guard(kind="otp", account=str(user.id))
    step = _matching_step(_decrypt(credential), _normalize(code))
    if step is None or not _claim_step(user.id, step, confirmed=False):
        db.session.rollback()
        raise Unauthorized("That code is not valid.", code="totp_code_invalid")
    credential.confirmed_at = utcnow()
    lockout.succeeded(kind="otp", account=str(user.id))
    codes = _new_recovery_codes(user.id)
    db.session.commit()
    return codes


def _check_second_factor(user_id: Any, code: str) -> bool:
    """Accept a TOTP code or consume a recovery code, inside the caller's transaction."""
    normalized = _normalize(code)
    credential = _credential(user_id, confirmed=True)
    if credential is None:
        return False
    step = _matching_step(_decrypt(credential), normalized)
    if step is not None:
        return _claim_step(user_id, step, confirmed=True)
    if len(normalized) != 10:
        return False
    used = db.session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.code_hash == keyed_hash("recovery", normalized),
               RecoveryCode.used_at.is_(None))
        .values(used_at=utcnow())
        .returning(RecoveryCode.id)
    ).first()
    return used is not None


def verify_second_factor(*, user: User, code: str) -> bool:
    """Check a TOTP code or a recovery code (consumed at once); commits the consumption."""
    accepted = _check_second_factor(user.id, code)
    db.session.commit()
    return accepted


def _require_fresh_code(user: User, code: str) -> None:
    if not user_requires_totp(user):
        raise Conflict("Two-factor is not on.", code="totp_not_enabled")
    # A stolen session must not be able to guess its way to turning two-factor off.
    lockout.guard(kind="otp", account=str(user.id))
    if not _check_second_factor(user.id, code):
        db.session.commit()
        raise Unauthorized("That code is not valid.", code="totp_code_invalid")
    lockout.succeeded(kind="otp", account=str(user.id))


def disable_totp(*, user: User, code: str) -> None:
    """Turn TOTP off after a fresh code (or recovery code); recovery codes go too."""
    _require_fresh_code(user, code)
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.execute(delete(TotpCredential).where(TotpCredential.user_id == user.id))
    db.session.commit()


def regenerate_recovery_codes(*, user: User, code: str) -> list[str]:
    """Replace every recovery code after a fresh code; the old ones stop working."""
    _require_fresh_code(user, code)
    codes = _new_recovery_codes(user.id)
    db.session.commit()
    return codes


def create_mfa_challenge(*, user: User, device_name: str | None, platform: str | None, ip: str | None,
                         user_agent: str | None) -> dict[str, Any]:
    """Hold a password-verified sign-in until the second factor; return the login answer."""
    token = secrets.token_urlsafe(32)
    db.session.add(MfaChallenge(
        user_id=user.id, token_hash=hashlib.sha256(token.encode()).hexdigest(),
        expires_at=utcnow() + MFA_TOKEN_TTL, device_name=device_name, platform=platform, ip=ip,
        user_agent=(user_agent or "")[:255] or None,
    ))
    db.session.commit()
    return {"mfa_required": True, "mfa_token": token, "methods": list(METHODS)}


def sign_in_or_challenge(*, user: User, session: dict[str, Any], strong_factor: bool = False) -> dict[str, Any]:
    """A first factor succeeded: tokens, or the second-step challenge when TOTP is on (commits).

    A ``strong_factor`` (a passkey: a device key unlocked by face, finger or PIN) is two
    factors already, so it skips the TOTP step.
    """
    if user.status == "suspended":
        db.session.rollback()
        raise Forbidden("This account is suspended.", code="account_suspended")
    if user.status == "pending_deletion":
        cancel_deletion(user=user, commit=False)  # signing in keeps the account, as with a password
    db.session.commit()
    forget_state(users=[user.id], strict=False)
    if not strong_factor and user_requires_totp(user):
        return create_mfa_challenge(user=user, **session)
    return start_session(user=user, **session)


def _live_challenge(mfa_token: str) -> MfaChallenge:
    """The challenge for ``mfa_token``, locked so concurrent answers to it take turns."""
    challenge = db.session.scalars(
        select(MfaChallenge)
        .where(MfaChallenge.token_hash == hashlib.sha256(mfa_token.encode()).hexdigest(),
               MfaChallenge.consumed_at.is_(None), MfaChallenge.expires_at > utcnow(),
               MfaChallenge.failures < MFA_MAX_FAILURES)
        .with_for_update()
    ).first()
    if challenge is None:
        db.session.rollback()
        raise Unauthorized("The sign-in step expired; sign in again.", code="mfa_token_invalid")
    return challenge


def complete_mfa_login(*, mfa_token: str, code: str, ip: str | None) -> dict[str, Any]:
    """Finish a two-step sign-in: the code for the held challenge → a new session's tokens."""
    challenge = _live_challenge(mfa_token)
    user_id = challenge.user_id
    db.session.rollback()  # no row lock held while the guard talks to Redis
    lockout.guard(kind="otp", account=str(user_id), ip=ip)
    challenge = _live_challenge(mfa_token)
    if not _check_second_factor(user_id, code):
        challenge.failures += 1
        remaining = MFA_MAX_FAILURES - challenge.failures
        db.session.commit()
        raise Unauthorized("That code is not valid.", code="mfa_code_invalid",
                           details={"attempts_remaining": remaining})
    challenge.consumed_at = utcnow()
    lockout.succeeded(kind="otp", account=str(user_id))
    device = (challenge.device_name, challenge.platform, challenge.user_agent)
    db.session.commit()
    user = db.session.get(User, user_id)
    if user is None or user.status == "suspended":  # suspended between the two steps
        raise Forbidden("This account is suspended.", code="account_suspended")
    return start_session(user=user, device_name=device[0], platform=device[1], ip=ip, user_agent=device[2])
