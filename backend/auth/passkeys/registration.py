"""Adding a passkey to a signed-in account: options, then the phone's attestation, then a stored key.

Adding a way in is as sensitive as changing the password: it needs a recent sign-in
(``PASSKEY_FRESH_SIGN_IN_S``) or the current password, so a stolen access token cannot
plant a passkey of its own. Every passkey asks for user verification (face, finger or
PIN) and a discoverable credential, so sign-in works without typing an email.
"""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from webauthn import generate_registration_options, verify_registration_response
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from backend.auth.accounts import reauthenticate
from backend.auth.links import emails
from backend.auth.models import Session, User
from backend.auth.passkeys import relying_party
from backend.auth.passkeys.challenges import ChallengeInvalid, issue_challenge, redeem_challenge
from backend.auth.passkeys.credentials import active_passkeys, descriptor, passkey_view, reported_transports
from backend.auth.passkeys.models import PasskeyCredential
from backend.auth.security_events import record_event
from backend.common.db import utcnow
from backend.common.errors import Conflict, Forbidden, Unauthorized, ValidationFailed
from backend.extensions import db

MAX_PASSKEYS = 20  # per account: plenty for every phone and laptop, bounded for the sign-in options


class RegistrationRejected(ValidationFailed):
    code = "passkey_registration_invalid"

    def __init__(self, why: str) -> None:
        super().__init__("The phone's answer did not prove a new passkey.", details={"check": why})


def _require_fresh(user: User, session_id: uuid.UUID | None, password: str | None, ip: str | None) -> None:
    """A recent sign-in on this session, or the current password."""
    if password is not None and user.password_hash:
        reauthenticate(user=user, password=password, ip=ip)
        return
    created = db.session.scalar(select(Session.created_at).where(Session.id == session_id))
    window = timedelta(seconds=current_app.config["PASSKEY_FRESH_SIGN_IN_S"])
    if created is None or utcnow() - created > window:
        raise Unauthorized("Confirm it is you: send your current password, or sign in again.",
                           code="reauthentication_required",
                           details={"password_accepted": bool(user.password_hash)})


def registration_options(*, user: User, session_id: uuid.UUID | None, password: str | None,
                         ip: str | None) -> dict[str, Any]:
    """``PublicKeyCredentialCreationOptions`` (JSON) for the phone's passkey prompt (commits the challenge)."""
    if user.is_anonymous:
        raise Conflict("Upgrade the anonymous account before adding a passkey.", code="anonymous_account")
    if user.email and user.email_verified_at is None:
        # An unproven address may be someone else's: no lasting way in is built on it.
        raise Forbidden("Confirm your email address before adding a passkey.", code="email_not_verified")
    _require_fresh(user, session_id, password, ip)
    existing = active_passkeys(user.id)
    if len(existing) >= MAX_PASSKEYS:
        raise Conflict(f"An account holds at most {MAX_PASSKEYS} passkeys; remove one first.",
                       code="passkey_limit_reached")
    challenge = issue_challenge(purpose="register", user_id=user.id)
    options = generate_registration_options(
        rp_id=relying_party.rp_id(), rp_name=relying_party.rp_name(),
        # The user handle is the account id (random, no personal data): discoverable sign-in returns it.
        user_id=user.id.bytes, user_name=user.email or str(user.id),
        user_display_name=user.display_name or user.email or "",
        challenge=challenge, timeout=current_app.config["PASSKEY_CHALLENGE_TTL_S"] * 1000,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, require_resident_key=True,
            user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[descriptor(p) for p in existing],  # the same phone is not registered twice
    )
    db.session.commit()
    return options_to_json_dict(options)


def register_passkey(*, user: User, credential: dict[str, Any], device_name: str | None,
                     ip: str | None) -> dict[str, Any]:
    """Verify the phone's attestation against our challenge and store the passkey (commits)."""
    redeemed = redeem_challenge(credential=credential, purpose="register")
    if redeemed.user_id != user.id:  # another account's challenge: not ours to spend
        db.session.rollback()
        raise ChallengeInvalid()
    db.session.commit()  # spent now, whatever the verification says
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=redeemed.challenge, expected_rp_id=relying_party.rp_id(),
            expected_origin=relying_party.allowed_origins(), require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise RegistrationRejected(str(exc)[:200]) from exc
    passkey = PasskeyCredential(
        user_id=user.id, credential_id=verified.credential_id, public_key=verified.credential_public_key,
        sign_count=verified.sign_count, transports=reported_transports(credential),
        device_name=(device_name or "").strip()[:100] or "Passkey", aaguid=str(verified.aaguid),
        backup_eligible=verified.credential_device_type == "multi_device", backed_up=verified.credential_backed_up,
    )
    db.session.add(passkey)
    try:
        db.session.flush()
    except IntegrityError as exc:  # the same authenticator key, registered before (here or on another account)
        db.session.rollback()
        raise Conflict("This passkey is already registered.", code="passkey_already_registered") from exc
    if db.session.scalar(select(func.count()).select_from(PasskeyCredential).where(
            PasskeyCredential.user_id == user.id, PasskeyCredential.disabled_at.is_(None))) > MAX_PASSKEYS:
        db.session.rollback()
        raise Conflict(f"An account holds at most {MAX_PASSKEYS} passkeys; remove one first.",
                       code="passkey_limit_reached")
    record_event(user_id=user.id, kind="passkey_added", ip=ip, passkey_id=str(passkey.id),
                 device_name=passkey.device_name)
    if user.email:
        emails.send_notice(user.email, "A passkey was added to your account",
                           f"A passkey named \"{passkey.device_name}\" can now sign in to your account. "
                           "If this was not you, remove it from your account's passkeys and change your password.")
    db.session.commit()
    return passkey_view(passkey)
