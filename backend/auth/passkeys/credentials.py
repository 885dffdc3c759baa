"""Reading and shaping stored passkeys: descriptors for the ceremonies, the public view, the export."""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

from backend.auth.passkeys.models import PasskeyCredential
from backend.extensions import db

KNOWN_TRANSPORTS = frozenset(t.value for t in AuthenticatorTransport)


def active_passkeys(user_id: uuid.UUID) -> list[PasskeyCredential]:
    """The user's passkeys that may sign in (not disabled), oldest first."""
    return list(db.session.scalars(select(PasskeyCredential).where(
        PasskeyCredential.user_id == user_id, PasskeyCredential.disabled_at.is_(None))
        .order_by(PasskeyCredential.created_at, PasskeyCredential.id)))


def descriptor(passkey: PasskeyCredential) -> PublicKeyCredentialDescriptor:
    """How a ceremony names a stored passkey to the phone (with the transports it reported)."""
    transports = [AuthenticatorTransport(t) for t in passkey.transports or [] if t in KNOWN_TRANSPORTS]
    return PublicKeyCredentialDescriptor(id=passkey.credential_id, transports=transports or None)


def reported_transports(credential: dict[str, Any]) -> list[str]:
    """The transports the platform reported at registration (unknown values dropped)."""
    response = credential.get("response")
    raw = response.get("transports") if isinstance(response, dict) else None
    if not isinstance(raw, list):
        return []
    return sorted({t for t in raw if isinstance(t, str) and t in KNOWN_TRANSPORTS})


def passkey_view(passkey: PasskeyCredential) -> dict[str, Any]:
    """The JSON-ready view of a passkey (never its public key)."""
    return {
        "id": passkey.id, "device_name": passkey.device_name, "created_at": passkey.created_at,
        "last_used_at": passkey.last_used_at, "transports": list(passkey.transports or []),
        "aaguid": passkey.aaguid, "backup_eligible": passkey.backup_eligible, "synced": passkey.backed_up,
        "status": "disabled" if passkey.disabled_at else "active", "disabled_reason": passkey.disabled_reason,
    }


def export_passkeys(user_id: uuid.UUID) -> list[dict[str, Any]]:
    """The user's passkeys for the data export (the public keys are not personal data of use to them)."""
    rows = db.session.scalars(select(PasskeyCredential).where(PasskeyCredential.user_id == user_id)
                              .order_by(PasskeyCredential.created_at))
    return [{key: (value.isoformat() if hasattr(value, "isoformat") else str(value) if key == "id" else value)
             for key, value in passkey_view(p).items()} for p in rows]
