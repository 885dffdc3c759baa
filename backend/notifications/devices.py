"""The device registry: register on every app open, list, sign out, and prune dead tokens."""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.auth.models import User
from backend.common.db import utcnow
from backend.common.errors import NotFound, ValidationFailed
from backend.common.locales import is_time_zone
from backend.notifications.fcm.providers import Outcome
from backend.notifications.models import Device

# FCM answers that mean the token will never work again: forget it.
DEAD_TOKEN = frozenset({Outcome.UNREGISTERED, Outcome.INVALID_TOKEN})
# The token belongs to another Firebase project: keep it for inspection, stop sending.
FLAGGED_TOKEN = frozenset({Outcome.SENDER_MISMATCH})


@dataclass(frozen=True)
class DeviceInfo:
    """What an app reports about itself on open."""

    token: str | None
    platform: str
    app_version: str | None = None
    locale: str | None = None
    time_zone: str | None = None
    push_permission: str = "granted"


def register_device(session: Session, *, user_id: uuid.UUID, installation_id: str, info: DeviceInfo) -> Device:
    """Create or refresh the caller's device; a token or installation seen elsewhere moves here."""
    if info.time_zone is not None and not is_time_zone(info.time_zone):
        raise ValidationFailed("Unknown time zone.", code="invalid_time_zone", details={"time_zone": info.time_zone})
    now = utcnow()
    # Lock the installation row (if any) so two opens at once cannot both insert.
    device = session.scalar(select(Device).where(Device.installation_id == installation_id).with_for_update())
    if info.token:
        # A token is one app install: whichever row held it before loses it.
        session.execute(
            update(Device)
            .where(Device.token == info.token, Device.installation_id != installation_id)
            .values(token=None, disabled_at=now, disabled_reason="token_moved")
        )
    if device is None:
        device = Device(installation_id=installation_id, user_id=user_id, platform=info.platform)
        session.add(device)
    elif device.user_id != user_id:
        # Another account signed in on this install: the device follows the signed-in user.
        device.user_id = user_id
    if device.token != info.token or device.disabled_reason == "sender_mismatch":
        device.disabled_at, device.disabled_reason = None, None
    device.token = info.token or None
    device.platform = info.platform
    device.app_version = info.app_version
    if info.locale:
        device.locale = info.locale
    if info.time_zone:
        device.time_zone = info.time_zone
    device.push_permission = info.push_permission
    device.last_seen_at = now
    if not info.token and device.disabled_at is None:
        device.disabled_at, device.disabled_reason = now, "no_token"
    session.execute(update(User).where(User.id == user_id).values(last_active_at=now))
    session.commit()
    return device


def list_devices(session: Session, *, user_id: uuid.UUID) -> list[Device]:
    """The caller's devices, most recently seen first."""
    stmt = select(Device).where(Device.user_id == user_id).order_by(Device.last_seen_at.desc(), Device.id)
    return list(session.scalars(stmt))


def unregister_device(session: Session, *, user_id: uuid.UUID, installation_id: str) -> None:
    """Forget the caller's device (sign-out); someone else's installation is not found."""
    device = session.scalar(
        select(Device).where(Device.installation_id == installation_id, Device.user_id == user_id)
    )
    if device is None:
        raise NotFound("No such device.", code="device_not_found")
    session.delete(device)
    session.commit()


def live_devices(session: Session, *, user_ids: list[uuid.UUID]) -> list[Device]:
    """Devices that can receive a push now: a token, not disabled, permission not denied."""
    stmt = select(Device).where(
        Device.user_id.in_(user_ids),
        Device.token.is_not(None),
        Device.disabled_at.is_(None),
        Device.push_permission != "denied",
    )
    return list(session.scalars(stmt))


def prune_token(session: Session, *, device_id: uuid.UUID, reason: str) -> None:
    """Act on FCM's verdict about a token: dead ones are cleared, mismatched ones flagged.

    Does not commit: callers prune inside the transaction that records the send result.
    """
    device = session.get(Device, device_id)
    if device is None:
        return
    if reason in DEAD_TOKEN:
        device.token = None
    elif reason not in FLAGGED_TOKEN:
        raise ValueError(f"{reason!r} says nothing about the token")
    device.disabled_at = utcnow()
    device.disabled_reason = str(reason)


def prune_stale_tokens(session: Session, *, older_than: timedelta, now: datetime | None = None,
                       limit: int = 10_000) -> int:
    """Clear tokens of devices not seen (app not opened) for ``older_than``; returns how many.

    FCM's guidance: a token unrefreshed for a month is likely stale, and Android expires it
    after 270 days. An app refreshes its token on every open (``register_device``), so a
    pruned device comes back the next time its user opens the app. Commits; at most
    ``limit`` a call, so a first run over a large table stays a short transaction.
    """
    cutoff = (now or utcnow()) - older_than
    stale = select(Device.id).where(Device.token.is_not(None), Device.last_seen_at < cutoff).limit(limit)
    pruned = session.execute(update(Device).where(Device.id.in_(stale)).values(
        token=None, disabled_at=utcnow(), disabled_reason="stale_token")).rowcount
    session.commit()
    return pruned
