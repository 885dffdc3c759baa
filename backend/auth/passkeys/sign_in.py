"""Signing in with a passkey: discoverable (no email typed) or for a named account.

Order of checks, each before the next costs anything:
1. the attempt limit for the client address (the auth lockout, before any crypto);
2. the challenge is spent (one conditional UPDATE): of twenty requests replaying one
   assertion, one goes on;
3. the signature, origin, RP ID, user presence and verification (py_webauthn);
4. the signature counter, only now that the signature is known to be the key's: a
   counter that does not move forward means two copies of the key exist. The passkey is
   disabled, every session of the account ends (the copy may have opened one), and the
   event is logged and mailed. Synced passkeys report 0 and are not counted.
A passkey is a strong factor: no TOTP step follows it.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from webauthn import generate_authentication_options, verify_authentication_response
from webauthn.helpers import options_to_json_dict
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import PublicKeyCredentialDescriptor, UserVerificationRequirement

from backend.auth import lockout
from backend.auth.accounts import find_by_email
from backend.auth.factors.totp import sign_in_or_challenge
from backend.auth.links import emails
from backend.auth.models import User
from backend.auth.passkeys import relying_party
from backend.auth.passkeys.challenges import ResponseMalformed, b64url_decode, issue_challenge, redeem_challenge
from backend.auth.passkeys.credentials import active_passkeys, descriptor
from backend.auth.passkeys.models import PasskeyCredential
from backend.auth.principal import forget_state
from backend.auth.security_events import record_event
from backend.auth.sessions import end_all_sessions
from backend.common.db import utcnow
from backend.common.errors import Unauthorized
from backend.extensions import db


class PasskeyRejected(Unauthorized):
    code = "passkey_invalid"

    def __init__(self, why: str, *, code: str | None = None, message: str = "The passkey was not accepted.",
                 **details: Any) -> None:
        super().__init__(message, code=code, details={"check": why, **details})


def _decoy_descriptor(email: str) -> PublicKeyCredentialDescriptor:
    """A stable, made-up credential for an address without passkeys: the answer does not tell it apart."""
    key = current_app.config["SECRET_KEY"].encode()
    fake_id = hmac.new(key, f"passkey-decoy:{email}".encode(), hashlib.sha256).digest()
    return PublicKeyCredentialDescriptor(id=fake_id)


def sign_in_options(*, email: str | None) -> dict[str, Any]:
    """``PublicKeyCredentialRequestOptions`` (JSON): for an account when ``email`` is given, else discoverable."""
    user_id, allow = None, None
    if email:
        email = email.strip().lower()
        user = find_by_email(email)
        passkeys = active_passkeys(user.id) if user is not None else []
        if passkeys:
            user_id, allow = user.id, [descriptor(p) for p in passkeys]
        else:
            allow = [_decoy_descriptor(email)]
    challenge = issue_challenge(purpose="sign_in", user_id=user_id)
    options = generate_authentication_options(
        rp_id=relying_party.rp_id(), challenge=challenge,
        timeout=current_app.config["PASSKEY_CHALLENGE_TTL_S"] * 1000, allow_credentials=allow,
        user_verification=UserVerificationRequirement.REQUIRED)
    db.session.commit()
    return options_to_json_dict(options)


def _raw_id(credential: dict[str, Any]) -> bytes:
    raw = b64url_decode(credential.get("rawId") if credential.get("rawId") is not None else credential.get("id"))
    if not 0 < len(raw) <= 1023:
        raise ResponseMalformed("credential_id")
    return raw


def _advance_counter(passkey: PasskeyCredential, new_count: int, backed_up: bool) -> bool:
    """Move the stored counter forward; False when it would not move (a cloned key), atomically."""
    # Spec §7.2 step 22: either counter non-zero and the new one not greater is a clone signal.
    forward = PasskeyCredential.sign_count < new_count if new_count else PasskeyCredential.sign_count == 0
    moved = db.session.execute(
        update(PasskeyCredential)
        .where(PasskeyCredential.id == passkey.id, PasskeyCredential.disabled_at.is_(None), forward)
        .values(sign_count=new_count, last_used_at=utcnow(), backed_up=backed_up)
        .returning(PasskeyCredential.id)
    ).first()
    return moved is not None


def _report_clone(passkey: PasskeyCredential, received: int, ip: str | None) -> None:
    """Disable the passkey, end every session of its account, log and mail it (commits)."""
    user = db.session.get(User, passkey.user_id)
    stored = passkey.sign_count
    passkey.disabled_at, passkey.disabled_reason = utcnow(), "clone_suspected"
    record_event(user_id=passkey.user_id, kind="passkey_clone_suspected", ip=ip, passkey_id=str(passkey.id),
                 device_name=passkey.device_name, stored_sign_count=stored, received_sign_count=received)
    if user is not None:
        end_all_sessions(user=user, reason="passkey_clone_suspected", commit=False)
        if user.email:
            emails.send_notice(user.email, "A passkey of yours was blocked",
                               f"Your passkey \"{passkey.device_name}\" signed in with a counter that went backwards, "
                               "which means a copy of it exists. We blocked it and signed out every device. "
                               "Remove it, add a new passkey, and change your password if you have one.")
    db.session.commit()
    if user is not None:
        forget_state(users=[user.id], strict=False)


def sign_in_with_passkey(*, credential: dict[str, Any], session: dict[str, Any]) -> dict[str, Any]:
    """Verify a passkey assertion and open a session (a strong factor: no TOTP step)."""
    ip = session.get("ip")
    lockout.guard(kind="passkey", ip=ip)
    raw_id = _raw_id(credential)
    redeemed = redeem_challenge(credential=credential, purpose="sign_in")
    db.session.commit()  # spent now: a replayed assertion finds nothing to redeem
    passkey = db.session.scalars(select(PasskeyCredential).where(PasskeyCredential.credential_id == raw_id)).first()
    if passkey is None:
        # The phone still offers a passkey we no longer know (removed, or its account erased):
        # the app can tell the platform to forget it (WebAuthn signalUnknownCredential).
        raise PasskeyRejected("unknown_credential", code="passkey_unknown",
                              message="This passkey is not registered any more; remove it from the phone.",
                              credential_id=credential.get("id"))
    if redeemed.user_id is not None and redeemed.user_id != passkey.user_id:
        raise PasskeyRejected("account")
    if passkey.disabled_at is not None:
        raise PasskeyRejected(passkey.disabled_reason or "disabled", code="passkey_disabled",
                              message="This passkey was blocked; sign in another way and add a new one.")
    user_handle = (credential.get("response") or {}).get("userHandle")
    if user_handle and b64url_decode(user_handle) != passkey.user_id.bytes:
        raise PasskeyRejected("user_handle")
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=redeemed.challenge, expected_rp_id=relying_party.rp_id(),
            expected_origin=relying_party.allowed_origins(), credential_public_key=passkey.public_key,
            # 0: py_webauthn compares counters before checking the signature; we compare after it.
            credential_current_sign_count=0, require_user_verification=True)
    except (WebAuthnException, ValueError, KeyError, TypeError) as exc:
        raise PasskeyRejected(str(exc)[:200]) from exc
    if not _advance_counter(passkey, verified.new_sign_count, verified.credential_backed_up):
        received = verified.new_sign_count
        db.session.rollback()
        passkey = db.session.get(PasskeyCredential, passkey.id, with_for_update=True)
        if passkey is not None and passkey.disabled_at is None:
            _report_clone(passkey, received, ip)
        raise PasskeyRejected("sign_count", code="passkey_clone_suspected",
                              message="This passkey looks copied and was blocked; sign in another way.")
    user = db.session.get(User, passkey.user_id)
    if user is None:
        raise PasskeyRejected("account")
    return sign_in_or_challenge(user=user, session=session, strong_factor=True)
