"""Data export and account deletion, with hooks other domains register into.

Each domain calls ``register_exporter(name, fn)`` and ``register_eraser(name, fn)``
from its ``init_app``; ``fn(user_id)`` returns JSON-ready data (exporters) or erases
that user's data in the current transaction, idempotently (erasers). Deletion has a
grace period (ACCOUNT_DELETION_GRACE_S): the account is marked, its sessions stay so
the app can cancel, and signing in or an explicit cancel restores it. A periodic job
(``jobs.accounts.erase_due_accounts``) erases accounts whose grace period is over.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from backend.auth.models import Session, User
from backend.auth.principal import forget_state
from backend.common.db import utcnow
from backend.common.errors import Conflict, NotFound
from backend.extensions import db

log = logging.getLogger(__name__)

Exporter = Callable[[uuid.UUID], Any]
Eraser = Callable[[uuid.UUID], None]
_EXPORTERS: dict[str, Exporter] = {}
_ERASERS: dict[str, Eraser] = {}


def register_exporter(name: str, fn: Exporter) -> None:
    """Add ``fn(user_id) -> JSON-ready data`` to every export, under ``name``."""
    _EXPORTERS[name] = fn


def register_eraser(name: str, fn: Eraser) -> None:
    """Run ``fn(user_id)`` (in the erasing transaction, idempotent) when an account is erased."""
    _ERASERS[name] = fn


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def export_account(*, user_id: uuid.UUID) -> dict[str, Any]:
    """Everything stored about the user, as JSON-ready data."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound("No such account.", code="account_not_found")
    sessions = db.session.scalars(select(Session).where(Session.user_id == user_id).order_by(Session.created_at))
    data: dict[str, Any] = {
        "exported_at": utcnow().isoformat(),
        "account": {
            "id": str(user.id), "email": user.email, "email_verified_at": _iso(user.email_verified_at),
            "role": user.role, "status": user.status, "is_anonymous": user.is_anonymous,
            "display_name": user.display_name, "first_name": user.first_name, "locale": user.locale,
            "time_zone": user.time_zone, "properties": user.properties, "created_at": _iso(user.created_at),
            "last_active_at": _iso(user.last_active_at), "password_changed_at": _iso(user.password_changed_at),
            "deletion_requested_at": _iso(user.deletion_requested_at), "created_ip": user.created_ip,
        },
        "sessions": [{
            "id": str(s.id), "device_name": s.device_name, "platform": s.platform, "ip": s.ip,
            "user_agent": s.user_agent, "created_at": _iso(s.created_at), "last_used_at": _iso(s.last_used_at),
            "revoked_at": _iso(s.revoked_at), "revoked_reason": s.revoked_reason,
        } for s in sessions],
    }
    for name, exporter in sorted(_EXPORTERS.items()):
        data[name] = exporter(user_id)
    return data


def request_deletion(*, user: User) -> User:
    """Schedule the account's erasure after the grace period (commits)."""
    if user.role != "user":
        raise Conflict("Staff accounts are removed by an administrator.", code="staff_account")
    if user.status != "pending_deletion":
        forget_state(users=[user.id])
        user.status, user.deletion_requested_at = "pending_deletion", utcnow()
        if user.email:
            from backend.auth.links.emails import send_notice

            send_notice(user.email, "Your account will be deleted",
                        f"Your account and its data will be erased on {deletion_due_at(user):%Y-%m-%d %H:%M} UTC. "
                        "Sign in before then to keep it.")
        db.session.commit()
        forget_state(users=[user.id], strict=False)
    return user


def cancel_deletion(*, user: User, commit: bool = True) -> User:
    """Keep the account: undo a pending deletion (sign-in does this too)."""
    if user.status == "pending_deletion":
        forget_state(users=[user.id])
        user.status, user.deletion_requested_at = "active", None
        if commit:
            db.session.commit()
            forget_state(users=[user.id], strict=False)
    return user


def deletion_due_at(user: User) -> Any:
    """When a pending deletion will be carried out (None when none is pending)."""
    if user.deletion_requested_at is None:
        return None
    return user.deletion_requested_at + timedelta(seconds=current_app.config["ACCOUNT_DELETION_GRACE_S"])


def due_account_ids(*, limit: int = 500) -> list[uuid.UUID]:
    """Accounts whose grace period is over."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["ACCOUNT_DELETION_GRACE_S"])
    return list(db.session.scalars(
        select(User.id).where(User.status == "pending_deletion", User.deletion_requested_at <= cutoff)
        .order_by(User.deletion_requested_at).limit(limit)))


def erase_account(*, user_id: uuid.UUID) -> bool:
    """Erase one account past its grace period, with every registered eraser (commits); idempotent."""
    cutoff = utcnow() - timedelta(seconds=current_app.config["ACCOUNT_DELETION_GRACE_S"])
    user = db.session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None or user.status != "pending_deletion" or user.deletion_requested_at is None \
            or user.deletion_requested_at > cutoff:
        db.session.rollback()
        return False  # already gone, or cancelled meanwhile
    session_ids = list(db.session.scalars(select(Session.id).where(Session.user_id == user_id)))
    forget_state(users=[user_id], sessions=session_ids)
    for name, eraser in sorted(_ERASERS.items()):
        eraser(user_id)
        log.info("eraser %s ran for %s", name, user_id)
    db.session.delete(user)  # sessions, refresh and one-time tokens go by ON DELETE CASCADE
    db.session.commit()
    forget_state(users=[user_id], sessions=session_ids, strict=False)
    return True
