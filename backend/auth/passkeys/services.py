"""Managing an account's passkeys: list, rename, remove (never the last way in)."""
from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from backend.auth.links import emails
from backend.auth.models import User
from backend.auth.passkeys.credentials import passkey_view
from backend.auth.passkeys.models import PasskeyCredential
from backend.auth.security_events import record_event
from backend.auth.ways_in import lock_user, refuse_last_way_in
from backend.common.errors import NotFound
from backend.common.pagination import Page, paginate
from backend.extensions import db


def list_passkeys(*, user: User, cursor: str | None, limit: int) -> Page:
    """One page of the user's passkeys (blocked ones too, so the user sees why), newest first."""
    return paginate(db.session, select(PasskeyCredential).where(PasskeyCredential.user_id == user.id),
                    order=(PasskeyCredential.created_at, PasskeyCredential.id), cursor=cursor, limit=limit)


def _own(user: User, passkey_id: uuid.UUID, *, lock: bool = False) -> PasskeyCredential:
    passkey = db.session.get(PasskeyCredential, passkey_id, with_for_update=lock)
    if passkey is None or passkey.user_id != user.id:
        raise NotFound("No such passkey.", code="passkey_not_found")
    return passkey


def rename_passkey(*, user: User, passkey_id: uuid.UUID, device_name: str) -> dict[str, Any]:
    """Give one of the user's passkeys a new name (commits)."""
    passkey = _own(user, passkey_id, lock=True)
    passkey.device_name = device_name.strip()[:100] or passkey.device_name
    db.session.commit()
    return passkey_view(passkey)


def remove_passkey(*, user: User, passkey_id: uuid.UUID, ip: str | None) -> None:
    """Remove a passkey unless it is the last way in; the phone may keep offering it (commits)."""
    locked = lock_user(user.id)
    passkey = _own(user, passkey_id)
    if passkey.disabled_at is None:  # a blocked passkey is no way in: it can always go
        refuse_last_way_in(locked, without_passkey=passkey.id)
    record_event(user_id=user.id, kind="passkey_removed", ip=ip, passkey_id=str(passkey.id),
                 device_name=passkey.device_name)
    if locked.email:
        emails.send_notice(locked.email, "A passkey was removed from your account",
                           f"The passkey \"{passkey.device_name}\" can no longer sign in to your account.")
    db.session.delete(passkey)
    db.session.commit()
